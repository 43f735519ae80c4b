import Foundation
import ImageBuffer
import Testing
@testable import Thumbnailer

/// PngSuite through our libpng decoder against the reference RGBA in `pngsuite/json`.
@Suite struct PNGSuiteTests {
    /// Reference samples: a flat JSON array of integers (8-bit, or 16-bit for 16-bit files).
    static func reference(_ name: String) throws -> [Int]? {
        let path = Corpus.path("pngsuite/json/\(name).json")
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let bytes = try readFile(path)
        var values: [Int] = []
        values.reserveCapacity(bytes.count / 3)
        var current = 0, inNumber = false
        for b in bytes {
            if b >= 0x30 && b <= 0x39 {
                current = current * 10 + Int(b - 0x30)
                inNumber = true
            } else if inNumber {
                values.append(current)
                current = 0
                inNumber = false
            }
        }
        return values
    }

    static func validFiles() throws -> [String] {
        try Corpus.files(in: "pngsuite/png").filter { $0.hasSuffix(".png") && !$0.hasPrefix("x") }
    }

    @Test func everyValidFileMatchesReference() throws {
        let files = try Self.validFiles()
        #expect(files.count >= 150, "expected the full PngSuite, found \(files.count) valid files")
        let thumbnailer = Thumbnailer()
        var sixteenBitFiles = 0
        for file in files {
            let name = String(file.dropLast(4))
            let image: RGBAImage
            do {
                image = try thumbnailer.decode(try Corpus.bytes("pngsuite/png/\(file)"))
            } catch {
                Issue.record("\(file): decode failed: \(error)")
                continue
            }
            let raw = try #require(try Self.reference(name), "\(file): no reference json/\(name).json")
            #expect(raw.count == image.width * image.height * 4, "\(file): reference has \(raw.count) samples")
            guard raw.count == image.pixels.count else { continue }
            // 16-bit files: json/NAME.json holds the 16-bit samples (json/README.md); we keep the high byte
            // (libpng's strip_16), which must match exactly.
            let is16 = raw.contains { $0 > 255 }
            let expected = is16 ? raw.map { $0 >> 8 } : raw
            let mismatches = zip(image.pixels, expected).filter { Int($0) != $1 }.count
            #expect(mismatches == 0, "\(file): \(mismatches) of \(raw.count) samples differ from the reference")
            if is16 {
                sixteenBitFiles += 1
                // NAME_to8.json was made by another converter (upstream's tests allow ±1 against it): within 1.
                if let to8 = try Self.reference("\(name)_to8") {
                    let worst = zip(image.pixels, to8).map { abs(Int($0) - $1) }.max() ?? 0
                    #expect(worst <= 1, "\(file): differs by \(worst) from \(name)_to8.json")
                    // Exact for every RGB and alpha file; only greyscale (colour type 0, IHDR byte 25) was
                    // rounded differently in the _to8 files.
                    let colourType = try Corpus.bytes("pngsuite/png/\(file)")[25]
                    #expect(worst == 0 || colourType == 0, "\(file): not exactly \(name)_to8.json")
                }
            }
        }
        #expect(sixteenBitFiles > 0, "no 16-bit files were checked")
    }

    /// The whole pipeline on every valid file (1x1 to 40x40, all colour types): thumbnails of the right size,
    /// PNG exactly when the source has transparent pixels.
    @Test func everyValidFileMakesThumbnails() throws {
        let thumbnailer = Thumbnailer()
        let specs = [ThumbnailSpec.crop96, .fit320, try #require(ThumbnailSpec("fit7")), try #require(ThumbnailSpec("crop5"))]
        for file in try Self.validFiles() {
            let bytes = try Corpus.bytes("pngsuite/png/\(file)")
            let image = try thumbnailer.decode(bytes)
            let thumbs = try thumbnailer.makeThumbnails(from: bytes, specs: specs)
            for spec in specs {
                let thumb = try #require(thumbs[spec], "\(file) \(spec)")
                let side = min(spec.size, spec.mode == .crop ? min(image.width, image.height) : max(image.width, image.height))
                #expect(max(thumb.width, thumb.height) == side, "\(file) \(spec): \(thumb.width)x\(thumb.height)")
                let info = try thumbnailer.probe(thumb.bytes)
                #expect(info.width == thumb.width && info.height == thumb.height, "\(file) \(spec)")
            }
            // fit320 keeps every pixel of these small files: PNG exactly when one is not opaque.
            #expect((thumbs[.fit320]?.format == .png) == !image.isOpaque, "\(file)")
        }
    }

    @Test func everyCorruptFileIsRefused() throws {
        let corrupt = try Corpus.files(in: "pngsuite/png").filter { $0.hasPrefix("x") && $0.hasSuffix(".png") }
        #expect(corrupt.count >= 14, "expected PngSuite's x*.png files, found \(corrupt.count)")
        let thumbnailer = Thumbnailer()
        for file in corrupt {
            let bytes = try Corpus.bytes("pngsuite/png/\(file)")
            #expect(throws: ThumbnailError.self, "\(file) must be refused") {
                _ = try thumbnailer.decode(bytes)
            }
            #expect(throws: ThumbnailError.self, "\(file) must be refused") {
                _ = try thumbnailer.makeThumbnails(from: bytes)
            }
        }
    }

    @Test func corruptFilesGiveSpecificErrors() throws {
        let thumbnailer = Thumbnailer()
        func error(_ file: String) throws -> ThumbnailError? {
            let bytes = try Corpus.bytes("pngsuite/png/\(file)")
            do {
                _ = try thumbnailer.decode(bytes)
                return nil
            } catch {
                return error
            }
        }
        // Damaged signatures (CR/LF translation, changed bytes) are reported as corrupt PNGs.
        for file in ["xlfn0g04.png", "xcrn0g04.png", "xs1n0g01.png", "xs2n0g01.png", "xs4n0g01.png", "xs7n0g01.png"] {
            guard case .corrupt(.png, let detail)? = try error(file) else {
                Issue.record("\(file): expected a corrupt PNG error, got \(String(describing: try error(file)))")
                continue
            }
            #expect(detail.contains("signature"), "\(file): \(detail)")
        }
        // A bad CRC is the codec's error, with its message.
        guard case .corrupt(.png, let detail)? = try error("xcsn0g01.png") else {
            Issue.record("xcsn0g01 (bad IDAT CRC) should be corrupt")
            return
        }
        #expect(detail.contains("CRC"), "message: \(detail)")
        let missingIDAT = try error("xdtn0g01.png")
        #expect(missingIDAT != nil)
        #expect(missingIDAT?.description.contains("PNG") == true)
    }

    /// Other PNGs of the corpus: 16-bit RGB with an ICC profile, and an 8-bit file, against ImageMagick.
    @Test(arguments: ["jpeg/monkey16.png", "jpeg/vgl_5674_0098.png", "jpeg/testorig.png"])
    func otherPNGsMatchImageMagick(file: String) async throws {
        let convert = try requireTool(["/usr/bin/convert", "/usr/bin/magick"], install: "apt-get install -y imagemagick")
        let ours = try Thumbnailer().decode(try Corpus.bytes(file))
        let ppm = try await run(convert, [Corpus.path(file), "-depth", "8", "ppm:-"])
        let reference = try #require(parsePPM(ppm))
        #expect(ours.width == reference.width && ours.height == reference.height)
        // ImageMagick rounds 16-bit samples (v/257), libpng's strip keeps the high byte: at most 1 apart.
        let worst = zip(ours.pixels, reference.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 255
        #expect(worst <= 1, "\(file): largest difference \(worst)")
    }
}
