import CImageCodecs
import Foundation
import ImageBuffer
import Testing
@testable import Thumbnailer

@Suite struct JPEGTests {
    /// libjpeg-turbo's test images (baseline, and the same picture Huffman- and arithmetic-coded) decode exactly
    /// like libjpeg-turbo's own djpeg.
    @Test(arguments: ["testorig.jpg", "testimgint.jpg", "testimgari.jpg"])
    func corpusMatchesDjpeg(file: String) async throws {
        let djpeg = try requireTool(["/usr/bin/djpeg"], install: "apt-get install -y libjpeg-turbo-progs")
        let bytes = try Corpus.bytes("jpeg/\(file)")
        let ours = try Thumbnailer().decode(bytes)
        let ppm = try await run(djpeg, ["-ppm", Corpus.path("jpeg/\(file)")])
        let reference = try #require(parsePPM(ppm))
        #expect(ours.width == 227 && ours.height == 149)
        #expect(ours.width * ours.height == reference.width * reference.height)
        let differing = zip(ours.pixels, reference.pixels).filter { $0 != $1 }.count
        #expect(differing == 0, "\(file): \(differing) samples differ from djpeg's decode")
        let info = try Thumbnailer().probe(bytes)
        #expect(info == ImageInfo(width: 227, height: 149, format: .jpeg, orientation: 1, mayHaveAlpha: false))
    }

    @Test func twelveBitIsRefusedAsUnsupported() throws {
        let bytes = try Corpus.bytes("jpeg/monkey12.jpg")
        #expect(throws: ThumbnailError.unsupportedJPEGPrecision(bits: 12)) { _ = try Thumbnailer().decode(bytes) }
        #expect(throws: ThumbnailError.unsupportedJPEGPrecision(bits: 12)) { _ = try Thumbnailer().probe(bytes) }
        #expect(ThumbnailError.unsupportedJPEGPrecision(bits: 12).description.contains("unsupported"))
    }

    /// The decode scale is the smallest n/8 leaving at least twice the target.
    @Test func scaleChoice() {
        let fit320 = DecodeTarget.specs([.fit320]).need(width: 5640, height: 3172)
        #expect(JPEGCodec.scale(width: 5640, height: 3172, need: fit320) == 1) // 705 >= 640
        let fit800 = DecodeTarget.specs([.fit800]).need(width: 5640, height: 3172)
        #expect(JPEGCodec.scale(width: 5640, height: 3172, need: fit800) == 3) // 2115 >= 1600 > 1410
        let all = DecodeTarget.specs(ThumbnailSpec.defaults).need(width: 5640, height: 3172)
        #expect(JPEGCodec.scale(width: 5640, height: 3172, need: all) == 3)
        let blinds = DecodeTarget.specs([.fit320]).need(width: 1920, height: 1200)
        #expect(JPEGCodec.scale(width: 1920, height: 1200, need: blinds) == 3) // 720 >= 640 > 480
        let crop = DecodeTarget.specs([.crop96]).need(width: 1920, height: 1200)
        #expect(JPEGCodec.scale(width: 1920, height: 1200, need: crop) == 2) // short side 300 >= 192 > 150
        let small = DecodeTarget.specs([.fit320]).need(width: 400, height: 300)
        #expect(JPEGCodec.scale(width: 400, height: 300, need: small) == 8) // never below 2x: full size
        #expect(JPEGCodec.scale(width: 400, height: 300, need: nil) == 8)
    }

    @Test func decodeAtTargetUsesReducedScale() throws {
        let jpeg = try JPEGCodec.encode(testPicture(width: 800, height: 600), quality: 90)
        let reduced = try Thumbnailer().decode(jpeg, targetLongestSide: 100)
        #expect(reduced.width == 200 && reduced.height == 150) // 2/8: 200 >= 2 * 100
        let full = try Thumbnailer().decode(jpeg)
        #expect(full.width == 800 && full.height == 600)
    }

    /// The DC-only stream (AC scans dropped) decodes at 1/8 to exactly what the whole file gives.
    @Test func dcOnlyStreamDecodesIdentically() throws {
        var inputs: [(String, [UInt8])] = [
            ("synthetic", try JPEGCodec.encode(testPicture(width: 1000, height: 700, seed: 7), quality: 85)),
        ]
        let photo = "\(Corpus.photoDirectory)/abstract/Elephants_5640x3172.jpg"
        inputs.append(("Elephants", try readFile(photo, what: "mate-backgrounds photo (apt-get install -y mate-backgrounds)")))
        for (name, jpeg) in inputs {
            let full = try decodeAtEighth(jpeg, smoothing: true)
            let stream = try #require(try dcOnlyStream(jpeg), "\(name): no DC-only stream")
            let dcOnly = try decodeAtEighth(stream, smoothing: false)
            #expect(stream.count * 2 < jpeg.count, "\(name): DC-only stream is \(stream.count) of \(jpeg.count) bytes")
            #expect(dcOnly.width == full.width && dcOnly.height == full.height)
            #expect(differences(dcOnly.pixels, full.pixels) == 0, "\(name): DC-only decode differs")
            // And the public path (which takes the shortcut) gives the same pixels.
            let viaAPI = try Thumbnailer().decode(jpeg, targetLongestSide: full.width / 2)
            #expect(differences(viaAPI.pixels, full.pixels) == 0, "\(name): Thumbnailer.decode differs")
        }
        // Baseline files are left alone.
        #expect(try dcOnlyStream(try Corpus.bytes("jpeg/testorig.jpg")) == nil)
    }

    private func differences(_ a: [UInt8], _ b: [UInt8]) -> Int {
        a.count == b.count ? zip(a, b).filter { $0 != $1 }.count : max(a.count, b.count)
    }

    private func dcOnlyStream(_ jpeg: [UInt8]) throws -> [UInt8]? {
        try jpeg.withUnsafeBufferPointer { buf in
            var info = ic_jpeg_info()
            var st = ic_status()
            var limits = ic_jpeg_limits(max_memory: 0, max_scans: 0, max_warnings: 0)
            let dec = try #require(ic_jpeg_open(buf.baseAddress, buf.count, &limits, &info, &st))
            defer { ic_jpeg_close(dec) }
            var size = 0
            guard let stream = ic_jpeg_dc_only_stream(dec, buf.baseAddress, buf.count, &size) else { return nil }
            defer { ic_free(stream) }
            return Array(UnsafeBufferPointer(start: stream, count: size))
        }
    }

    private func decodeAtEighth(_ jpeg: [UInt8], smoothing: Bool) throws -> RGBAImage {
        try jpeg.withUnsafeBufferPointer { buf in
            var info = ic_jpeg_info()
            var st = ic_status()
            var limits = ic_jpeg_limits(max_memory: 0, max_scans: 0, max_warnings: 0)
            let dec = try #require(ic_jpeg_open(buf.baseAddress, buf.count, &limits, &info, &st))
            defer { ic_jpeg_close(dec) }
            var w: Int32 = 0, h: Int32 = 0
            try #require(ic_jpeg_start(dec, 1, smoothing ? 1 : 0, &w, &h, &st) == IC_OK, "start: \(Codec.message(st))")
            var pixels = [UInt8](repeating: 0, count: Int(w * h * 4))
            var rows: Int32 = 0
            let code = ic_jpeg_read_rows(dec, &pixels, h, &rows, &st)
            try #require(code == IC_OK && rows == h, "decode failed: \(Codec.message(st))")
            return try #require(RGBAImage(width: Int(w), height: Int(h), pixels: pixels))
        }
    }

    /// Each scan of a progressive file is a pass over the image: the scan limit refuses files with too many.
    @Test func scanLimit() async throws {
        // A valid 100-scan file (jpegtran's maximum): one DC scan and one scan per AC coefficient or band.
        let jpegtran = try requireTool(["/usr/bin/jpegtran"], install: "apt-get install -y libjpeg-turbo-progs")
        let djpeg = try requireTool(["/usr/bin/djpeg"], install: "apt-get install -y libjpeg-turbo-progs")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("thumb-scans-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var script = ["0,1,2: 0-0, 0, 0;"] + (1...63).map { "0: \($0)-\($0), 0, 0;" }
        for c in 1...2 { script += (1...17).map { "\(c): \($0)-\($0), 0, 0;" } + ["\(c): 18-63, 0, 0;"] }
        let scriptPath = dir.appendingPathComponent("scans.txt").path
        try Data(script.joined(separator: "\n").utf8).write(to: URL(fileURLWithPath: scriptPath))
        let many = dir.appendingPathComponent("many.jpg").path
        _ = try await run(jpegtran, ["-scans", scriptPath, "-outfile", many, Corpus.path("jpeg/testorig.jpg")])
        let jpeg = try readFile(many)
        #expect(JPEGCraft.markers(jpeg).filter { $0.code == 0xDA }.count == 100)

        let decoded = try Thumbnailer().decode(jpeg) // default limit 150
        let ppm = try await run(djpeg, ["-ppm", many])
        let reference = try #require(parsePPM(ppm))
        #expect(zip(decoded.pixels, reference.pixels).filter { $0 != $1 }.isEmpty)
        var strict = ThumbnailerLimits()
        strict.maxJPEGScans = 50
        #expect(throws: ThumbnailError.resourceLimit(format: .jpeg, detail: "more than 50 scans in a progressive JPEG")) {
            _ = try Thumbnailer(limits: strict).decode(jpeg)
        }
        strict.maxJPEGScans = 5 // a plain progressive file has 10
        let plain = try JPEGCodec.encode(testPicture(width: 64, height: 64), quality: 80)
        #expect(throws: ThumbnailError.self) { _ = try Thumbnailer(limits: strict).decode(plain) }
    }

    /// A scan repeated hundreds of times (hostile, not valid): refused, by the scan or the warning limit.
    @Test func repeatedScansAreRefused() throws {
        let jpeg = try JPEGCodec.encode(testPicture(width: 64, height: 64), quality: 80)
        let marks = JPEGCraft.markers(jpeg)
        let lastScan = try #require(marks.last { $0.code == 0xDA })
        let eoi = try #require(marks.last { $0.code == 0xD9 })
        let repeated = Array(jpeg[lastScan.offset..<eoi.offset])
        var hostile = Array(jpeg[..<eoi.offset])
        for _ in 0..<300 { hostile += repeated }
        hostile += [0xFF, 0xD9]
        #expect(throws: ThumbnailError.self) { _ = try Thumbnailer().decode(hostile) }
        _ = try Thumbnailer().decode(jpeg)
    }

    /// Progressive JPEGs keep all coefficients in memory: libjpeg's max_memory_to_use bounds that.
    @Test func decoderMemoryLimit() throws {
        let jpeg = try JPEGCodec.encode(testPicture(width: 1024, height: 1024), quality: 80)
        var tight = ThumbnailerLimits()
        tight.maxDecoderMemory = 1 << 20 // coefficients need about 3 MB
        do {
            _ = try Thumbnailer(limits: tight).decode(jpeg)
            Issue.record("decoded beyond the memory limit")
        } catch {
            #expect(error == .resourceLimit(format: .jpeg, detail: "decoder memory limit exceeded"))
        }
        _ = try Thumbnailer().decode(jpeg)
    }

    /// CMYK and YCCK JPEGs (Adobe, inverted samples, as Photoshop writes them) become the right RGB.
    @Test(arguments: [false, true])
    func cmykAndYCCK(ycck: Bool) throws {
        // Top half red (no cyan, full magenta and yellow ink), bottom half 50% grey (K only); stored inverted.
        var cmyk = [UInt8](repeating: 0, count: 32 * 32 * 4)
        for p in 0..<(32 * 32) {
            let ink: [Int] = p < 32 * 16 ? [0, 255, 255, 0] : [0, 0, 0, 128]
            for c in 0..<4 { cmyk[p * 4 + c] = UInt8(255 - ink[c]) }
        }
        var out: UnsafeMutablePointer<UInt8>?
        var size = 0
        var st = ic_status()
        try #require(ic_jpeg_encode_cmyk(cmyk, 32, 32, 95, ycck ? 1 : 0, &out, &size, &st) == IC_OK)
        defer { ic_free(out) }
        let bytes = Array(UnsafeBufferPointer(start: try #require(out), count: size))
        // Adobe APP14 transform byte: 0 = CMYK, 2 = YCCK.
        let adobe = try #require(bytes.indices.dropLast(12).first { bytes[$0..<($0 + 5)].elementsEqual("Adobe".utf8) })
        #expect(bytes[adobe + 11] == (ycck ? 2 : 0))
        let image = try Thumbnailer().decode(bytes)
        func close(_ p: [UInt8], _ rgb: [Int]) -> Bool { zip(p.prefix(3), rgb).allSatisfy { abs(Int($0) - $1) <= 4 } }
        #expect(close(pixel(image, 16, 4), [255, 0, 0]), "top: \(pixel(image, 16, 4))")
        #expect(close(pixel(image, 16, 28), [127, 127, 127]), "bottom: \(pixel(image, 16, 28))")
    }

    /// ImageMagick's CMYK JPEG (it writes YCCK) decodes to the colours it was made from.
    @Test func imageMagickCMYK() async throws {
        let convert = try requireTool(["/usr/bin/convert", "/usr/bin/magick"], install: "apt-get install -y imagemagick")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("thumb-cmyk-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("cmyk.jpg").path
        _ = try await run(convert, ["-size", "32x16", "xc:#FF0000", "-size", "32x16", "xc:#00FF80", "-append",
                              "-colorspace", "CMYK", "-quality", "95", path])
        let image = try Thumbnailer().decode(try readFile(path))
        #expect(image.width == 32 && image.height == 32)
        func close(_ p: [UInt8], _ rgb: [Int]) -> Bool { zip(p.prefix(3), rgb).allSatisfy { abs(Int($0) - $1) <= 12 } }
        #expect(close(pixel(image, 16, 4), [255, 0, 0]), "top: \(pixel(image, 16, 4))")
        #expect(close(pixel(image, 16, 28), [0, 255, 128]), "bottom: \(pixel(image, 16, 28))")
    }

    @Test func greyscaleJPEG() async throws {
        let convert = try requireTool(["/usr/bin/convert", "/usr/bin/magick"], install: "apt-get install -y imagemagick")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("thumb-grey-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("grey.jpg").path
        _ = try await run(convert, ["-size", "16x16", "xc:gray(200)", "-colorspace", "Gray", "-quality", "95", path])
        let image = try Thumbnailer().decode(try readFile(path))
        let p = pixel(image, 8, 8)
        #expect(p[0] == p[1] && p[1] == p[2] && abs(Int(p[0]) - 200) <= 2 && p[3] == 255, "\(p)")
    }
}
