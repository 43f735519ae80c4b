import CImageCodecs
import Foundation
import ImageBuffer
import TestProcesses
import Testing
@testable import Thumbnailer

/// GIF, WebP and HEIC files made here by the real tools (ImageMagick, gifsicle, cwebp, img2webp, heif-enc) from
/// generated pictures: sizes, pixels against the source (PSNR thresholds per codec), frame counts, HEIF orientation.
@Suite struct MoreFormatsTests {
    // MARK: GIF

    @Test func gifDecodesCloseToItsSource() async throws {
        let source = testPicture(width: 160, height: 120, seed: 3)
        let gif = try await Formats.make(source, "still.gif") { png, out in try await Formats.convert([png, out]) }
        let image = try Thumbnailer().decode(gif)
        #expect(image.width == 160 && image.height == 120)
        let quality = psnr(image, source)
        #expect(quality >= 24, "GIF (256 colours, dithered) PSNR \(quality) dB")
        let info = try Thumbnailer().probe(gif)
        #expect(info.format == .gif && info.width == 160 && info.height == 120)
        #expect(info.frameCount == 1 && !info.isAnimated && !info.frameCountIsLowerBound)
        let thumb = try Thumbnailer().makeThumbnail(from: gif, spec: try ThumbnailSpec(parsing: "fit80"))
        #expect(thumb.format == .jpeg && thumb.width == 80 && thumb.height == 60)
        // Interlaced: the same pixels.
        let interlaced = try await Formats.make(source, "interlaced.gif") { png, out in
            try await Formats.convert([png, "-interlace", "GIF", out])
        }
        #expect(try Thumbnailer().decode(interlaced).pixels == image.pixels)
    }

    /// An animation optimised by gifsicle (later frames are small rectangles): three frames counted, the first shown.
    @Test func animatedGIFShowsItsFirstFrameAndCountsFrames() async throws {
        let frames = Formats.distinctFrames(width: 120, height: 90)
        var pngs: [String] = []
        for (index, frame) in frames.enumerated() { pngs.append(try Formats.writePNG(frame, "anim-\(index).png")) }
        let plain = Formats.path("anim-plain.gif"), optimised = Formats.path("anim.gif")
        try await Formats.convert(["-delay", "10"] + pngs + [plain])
        try await Formats.tool("gifsicle", ["-O3", plain, "-o", optimised])
        let gif = try readFile(optimised)
        let info = try Thumbnailer().probe(gif)
        #expect(info.frameCount == 3 && info.isAnimated && !info.frameCountIsLowerBound, "\(info)")
        #expect(info.width == 120 && info.height == 90)
        let first = try Thumbnailer().decode(gif)
        #expect(psnr(first, frames[0]) >= 24, "first frame PSNR \(psnr(first, frames[0]))")
        #expect(psnr(first, frames[1]) < 15, "not the second frame")
    }

    /// Thousands of frames are counted without decoding them, in constant memory, and only up to the limit.
    @Test func gifWithThousandsOfFramesIsCountedCheaply() async throws {
        let tiny = try Formats.writePNG(testPicture(width: 8, height: 8, seed: 2), "tiny.png")
        let one = Formats.path("tiny.gif"), many = Formats.path("many.gif")
        try await Formats.convert([tiny, one])
        try await Formats.tool("gifsicle", [String](repeating: one, count: 3000) + ["-o", many])
        let gif = try readFile(many)
        let info = try Thumbnailer().probe(gif)
        #expect(info.frameCount == 3000 && !info.frameCountIsLowerBound, "\(info)")
        var limits = ThumbnailerLimits()
        limits.maxFrames = 1000
        let capped = try Thumbnailer(limits: limits).probe(gif)
        #expect(capped.frameCount == 1000 && capped.frameCountIsLowerBound && capped.isAnimated)
        #expect(try Thumbnailer().makeThumbnail(from: gif, spec: .crop96).width == 8)
    }

    @Test func transparentGIFGivesPNGThumbnail() async throws {
        var source = testPicture(width: 64, height: 48, seed: 4)
        for y in 0..<48 { for x in 0..<32 { source.pixels[(y * 64 + x) * 4 + 3] = 0 } } // left half transparent
        let gif = try await Formats.make(source, "transparent.gif") { png, out in try await Formats.convert([png, out]) }
        let info = try Thumbnailer().probe(gif)
        #expect(info.mayHaveAlpha)
        let image = try Thumbnailer().decode(gif)
        #expect(pixel(image, 5, 20)[3] == 0 && pixel(image, 50, 20)[3] == 255)
        #expect(try Thumbnailer().makeThumbnail(from: gif, spec: .fit320).format == .png)
    }

    // MARK: WebP

    @Test func webpLossyLosslessAndAlpha() async throws {
        let source = testPicture(width: 160, height: 120, seed: 5)
        let lossy = try await Formats.make(source, "lossy.webp") { png, out in
            try await Formats.tool("cwebp", ["-quiet", "-q", "90", png, "-o", out])
        }
        let decoded = try Thumbnailer().decode(lossy)
        #expect(decoded.width == 160 && decoded.height == 120)
        // The picture's per-pixel noise does not survive 4:2:0 chroma and the transform well: 29.7 dB with libwebp 1.2.4.
        #expect(psnr(decoded, source) >= 28, "lossy WebP q90 PSNR \(psnr(decoded, source)) dB")
        let info = try Thumbnailer().probe(lossy)
        #expect(info.format == .webp && info.frameCount == 1 && !info.isAnimated)

        let lossless = try await Formats.make(source, "lossless.webp") { png, out in
            try await Formats.tool("cwebp", ["-quiet", "-lossless", png, "-o", out])
        }
        #expect(try Thumbnailer().decode(lossless).pixels == source.pixels, "lossless WebP decodes exactly")

        var translucent = source
        for i in stride(from: 3, to: translucent.pixels.count, by: 4) { translucent.pixels[i] = UInt8(i / 4 % 256) }
        let alpha = try await Formats.make(translucent, "alpha.webp") { png, out in
            try await Formats.tool("cwebp", ["-quiet", "-lossless", "-exact", png, "-o", out])
        }
        #expect(try Thumbnailer().decode(alpha).pixels == translucent.pixels, "alpha kept")
        #expect(try Thumbnailer().probe(alpha).mayHaveAlpha)
        #expect(try Thumbnailer().makeThumbnail(from: alpha, spec: .fit320).format == .png)
    }

    /// A large still WebP is scaled by libwebp while it decodes (never whole at full size) and its thumbnails are as
    /// good as those of the same picture as PNG. The decoding runs off the cooperative pool (seconds in a debug
    /// build, which would starve the server tests running beside it).
    @Test func largeWebPIsScaledWhileDecoding() async throws {
        let source = try await offPool { testPicture(width: 1000, height: 700, seed: 6) }
        let webp = try await Formats.make(source, "large.webp") { png, out in
            try await Formats.tool("cwebp", ["-quiet", "-lossless", png, "-o", out])
        }
        let (reduced, pairs) = try await offPool { () throws -> (RGBAImage, [(ThumbnailSpec, RGBAImage, RGBAImage)]) in
            let fromWebP = try Thumbnailer().makeThumbnails(from: webp)
            let fromPNG = try Thumbnailer().makeThumbnails(from: try PNGCodec.encode(source, compressionLevel: 1))
            let pairs = try ThumbnailSpec.defaults.map { spec in
                (spec, try Thumbnailer().decode(fromWebP[spec]?.bytes ?? []), try Thumbnailer().decode(fromPNG[spec]?.bytes ?? []))
            }
            return (try Thumbnailer().decode(webp, targetLongestSide: 100), pairs)
        }
        #expect(reduced.width == 200 && reduced.height == 140, "\(reduced.width)x\(reduced.height)")
        for (spec, a, b) in pairs {
            #expect(a.width == b.width && a.height == b.height, "\(spec)")
            #expect(psnr(a, b) >= 30, "\(spec): WebP vs PNG thumbnail PSNR \(psnr(a, b)) dB")
        }
    }

    @Test func animatedWebPShowsItsFirstFrameAndCountsFrames() async throws {
        let frames = Formats.distinctFrames(width: 96, height: 64)
        var arguments = ["-lossless"]
        for (index, frame) in frames.enumerated() {
            arguments += (index > 0 ? ["-d", "80"] : []) + [try Formats.writePNG(frame, "webp-\(index).png")]
        }
        let out = Formats.path("anim.webp")
        try await Formats.tool("img2webp", arguments + ["-o", out])
        let webp = try readFile(out)
        let info = try Thumbnailer().probe(webp)
        #expect(info.frameCount == 3 && info.isAnimated && !info.frameCountIsLowerBound, "\(info)")
        #expect(info.width == 96 && info.height == 64)
        #expect(try Thumbnailer().decode(webp).pixels == frames[0].pixels, "first frame, exactly")
        var limits = ThumbnailerLimits()
        limits.maxFrames = 2
        let capped = try Thumbnailer(limits: limits).probe(webp)
        #expect(capped.frameCount == 2 && capped.frameCountIsLowerBound)
        #expect(try Thumbnailer().makeThumbnail(from: webp, spec: .fit320).format == .jpeg)
    }

    // MARK: HEIC

    @Test func heicDecodesCloseToItsSource() async throws {
        let source = testPicture(width: 160, height: 120, seed: 8)
        let heic = try await Formats.make(source, "still.heic") { png, out in
            try await Formats.tool("heif-enc", ["--no-alpha", "-q", "90", png, "-o", out])
        }
        let image = try Thumbnailer().decode(heic)
        #expect(image.width == 160 && image.height == 120)
        #expect(psnr(image, source) >= 28, "HEIC q90 PSNR \(psnr(image, source)) dB") // 29.5 dB with x265 3.5
        let info = try Thumbnailer().probe(heic)
        #expect(info == ImageInfo(width: 160, height: 120, format: .heif, orientation: 1, mayHaveAlpha: false))
        let thumbs = try Thumbnailer().makeThumbnails(from: heic)
        #expect(thumbs[.crop96]?.width == 96 && thumbs[.fit320]?.width == 160 && thumbs[.fit320]?.format == .jpeg)
    }

    /// An alpha plane (a second, monochrome HEVC image) comes through; the thumbnail is a PNG.
    @Test func heicWithAlphaGivesPNGThumbnail() async throws {
        var source = testPicture(width: 64, height: 48, seed: 13)
        for y in 0..<48 { for x in 0..<32 { source.pixels[(y * 64 + x) * 4 + 3] = 0 } } // left half transparent
        let heic = try await Formats.make(source, "alpha.heic") { png, out in
            try await Formats.tool("heif-enc", ["-q", "90", png, "-o", out])
        }
        let info = try Thumbnailer().probe(heic)
        #expect(info.mayHaveAlpha && info.width == 64 && info.height == 48)
        let image = try Thumbnailer().decode(heic)
        #expect(pixel(image, 8, 24)[3] < 16 && pixel(image, 56, 24)[3] > 240, "\(pixel(image, 8, 24)) \(pixel(image, 56, 24))")
        #expect(try Thumbnailer().makeThumbnail(from: heic, spec: .fit320).format == .png)
    }

    /// libheif applies the file's irot/imir; the EXIF orientation 6 the file also carries (as iPhones write both)
    /// is not applied a second time.
    @Test(arguments: 1...8)
    func heicTransformsAreAppliedOnce(orientation: Int) async throws {
        let swaps = orientation >= 5
        let stored = OrientationTests.quadrants(width: swaps ? 32 : 64, height: swaps ? 64 : 32,
                                                try #require(OrientationTests.stored[orientation]))
        let exif = Array(JPEGCraft.exifSegment(orientation: 6, bigEndian: false)[10...])
        // x265 encodes off the cooperative pool (its start-up is slow, and eight cases run at once).
        let heic = try await offPool { try Formats.encodeHEIC(stored, orientation: orientation, exif: exif) }
        #expect(heic.count > exif.count && Formats.contains(heic, exif), "the file carries EXIF orientation 6")
        let info = try Thumbnailer().probe(heic)
        #expect(info.width == 64 && info.height == 32 && info.orientation == 1, "\(info)")
        let upright = try Thumbnailer().decode(heic)
        #expect(upright.width == 64 && upright.height == 32)
        OrientationTests.assertUpright(upright, orientation: orientation, "HEIC")
        let thumb = try Thumbnailer().thumbnailImage(from: heic, spec: try #require(ThumbnailSpec("fit32")))
        #expect(thumb.width == 32 && thumb.height == 16)
        OrientationTests.assertUpright(thumb, orientation: orientation, "HEIC thumbnail")
    }

    /// heif-enc keeps a JPEG's EXIF orientation without writing irot: the HEIF is shown as stored, the JPEG rotated.
    @Test func heicExifOrientationAloneIsNotApplied() async throws {
        let stored = OrientationTests.quadrants(width: 32, height: 64, try #require(OrientationTests.stored[6]))
        let jpeg = JPEGCraft.inserting(JPEGCraft.exifSegment(orientation: 6, bigEndian: true),
                                       into: try JPEGCodec.encode(stored, quality: 95))
        let jpegPath = Formats.path("exif6.jpg"), heicPath = Formats.path("exif6.heic")
        try Data(jpeg).write(to: URL(fileURLWithPath: jpegPath))
        try await Formats.tool("heif-enc", ["-q", "90", jpegPath, "-o", heicPath])
        let heic = try readFile(heicPath)
        #expect(Formats.contains(heic, Array("Exif".utf8)))
        let image = try Thumbnailer().decode(heic)
        #expect(image.width == 32 && image.height == 64, "as stored: \(image.width)x\(image.height)")
        #expect(try Thumbnailer().decode(jpeg).width == 64, "the JPEG itself is rotated")
    }

    // MARK: Hostile input

    @Test func oversizedFilesAreRefusedBeforeDecoding() async throws {
        let thumbnailer = Thumbnailer()
        func refused(_ bytes: [UInt8], _ expected: ThumbnailError, _ label: String) {
            #expect(throws: expected, "\(label) probe") { _ = try thumbnailer.probe(bytes) }
            #expect(throws: expected, "\(label) decode") { _ = try thumbnailer.decode(bytes) }
            #expect(throws: expected, "\(label) thumbnails") { _ = try thumbnailer.makeThumbnails(from: bytes) }
        }
        // GIF: a 65535x65535 logical screen around a small frame.
        var gif = try await Formats.make(testPicture(width: 16, height: 16), "small.gif") { png, out in
            try await Formats.convert([png, out])
        }
        gif.replaceSubrange(6..<10, with: [0xFF, 0xFF, 0xFF, 0xFF])
        refused(gif, .tooManyPixels(width: 65535, height: 65535, limit: 50_000_000), "GIF screen")
        // GIF: a first frame far larger than the screen (shown at its own size).
        refused(GIFCraft.gif(screen: (10, 10), frame: (40000, 40000)), .tooManyPixels(width: 40000, height: 40000,
                                                                                      limit: 50_000_000), "GIF frame")
        let crafted = try Thumbnailer().decode(GIFCraft.gif(screen: (10, 10), frame: (2, 1)))
        #expect(crafted.width == 10 && pixel(crafted, 0, 0) == [0, 0, 0, 255] && pixel(crafted, 5, 5)[3] == 0,
                "crafting is sound: the frame black, the rest of the screen transparent")

        // WebP still: the VP8 frame header claims 16383x16383.
        var webp = try await Formats.make(testPicture(width: 16, height: 16), "small.webp") { png, out in
            try await Formats.tool("cwebp", ["-quiet", "-q", "80", png, "-o", out])
        }
        #expect(Array(webp[12..<16]) == Array("VP8 ".utf8))
        webp.replaceSubrange(26..<30, with: [0xFF, 0x3F, 0xFF, 0x3F])
        refused(webp, .tooManyPixels(width: 16383, height: 16383, limit: 50_000_000), "WebP")
        // Animated WebP: the canvas claims 16384x16384 around a small first frame.
        var animated = try readFile(try await Formats.animatedWebP())
        #expect(Array(animated[12..<16]) == Array("VP8X".utf8))
        animated.replaceSubrange(24..<30, with: [0xFF, 0x3F, 0x00, 0xFF, 0x3F, 0x00])
        refused(animated, .tooManyPixels(width: 16384, height: 16384, limit: 50_000_000), "animated WebP")

        // HEIC: the coded size (ispe) claims 20000x20000, under libheif's side limit and over our pixel limit;
        // 40000 is over both and libheif refuses it first.
        let heic = try await Formats.make(testPicture(width: 64, height: 48), "small.heic") { png, out in
            try await Formats.tool("heif-enc", ["--no-alpha", "-q", "50", png, "-o", out])
        }
        refused(Formats.patchingISPE(heic, side: 20000), .tooManyPixels(width: 20000, height: 20000, limit: 50_000_000),
                "HEIC")
        do {
            _ = try thumbnailer.probe(Formats.patchingISPE(heic, side: 40000))
            Issue.record("a 40000x40000 HEIC was accepted")
        } catch {
            guard case .resourceLimit(.heif, _) = error else { Issue.record("expected resourceLimit, got \(error)"); return }
        }
        // heif-enc writes 64x48 as a grid over one 64x64 tile (its 'idat' holds the grid: version, flags, rows-1,
        // columns-1, 16-bit width and height). A grid claiming 20000x20000 behind a 64x48 header (under the 30000 side
        // limit) is refused by libheif's side limit, held to the header's sides, instead of being allocated.
        let idat = try #require(Formats.range(of: Array("idat".utf8), in: heic), "heif-enc wrote no grid")
        #expect(Array(heic[(idat.upperBound + 4)..<(idat.upperBound + 8)]) == [0, 64, 0, 48])
        var grid = heic
        grid.replaceSubrange((idat.upperBound + 4)..<(idat.upperBound + 8), with: [0x4E, 0x20, 0x4E, 0x20])
        #expect(try thumbnailer.probe(grid).width == 64, "the header still says 64x48")
        do {
            _ = try thumbnailer.makeThumbnails(from: grid)
            Issue.record("a 20000x20000 grid was decoded")
        } catch {
            guard case .resourceLimit(.heif, let detail) = error, detail.contains("20000x20000") else {
                Issue.record("expected resourceLimit, got \(error)")
                return
            }
        }
    }

    @Test func truncatedFilesAreRefusedOrPartial() async throws {
        let source = testPicture(width: 96, height: 80, seed: 9)
        let gif = try await Formats.make(source, "cut.gif") { png, out in try await Formats.convert([png, out]) }
        let webp = try await Formats.make(source, "cut.webp") { png, out in
            try await Formats.tool("cwebp", ["-quiet", "-q", "80", png, "-o", out])
        }
        let heic = try await Formats.make(source, "cut.heic") { png, out in
            try await Formats.tool("heif-enc", ["--no-alpha", "-q", "80", png, "-o", out])
        }
        func truncated(_ bytes: [UInt8], _ format: ImageFormat, _ label: String) {
            do {
                _ = try Thumbnailer().makeThumbnails(from: bytes)
                Issue.record("\(label): a cut file made thumbnails")
            } catch {
                guard case .truncated(let f, _) = error, f == format else {
                    Issue.record("\(label): expected truncated \(format), got \(error)")
                    return
                }
            }
        }
        truncated(Array(gif.prefix(20)), .gif, "GIF header")
        truncated(Array(webp.prefix(40)), .webp, "WebP header")
        truncated(Array(webp.prefix(webp.count * 6 / 10)), .webp, "WebP data")
        let metaEnd = try #require(Formats.range(of: Array("mdat".utf8), in: heic)).lowerBound
        truncated(Array(heic.prefix(metaEnd / 2)), .heif, "HEIC inside meta")
        truncated(Array(heic.prefix(metaEnd + 40)), .heif, "HEIC inside mdat")
        // A GIF cut inside its image data keeps the rows before the cut, like a cut PNG.
        let cut = Array(gif.prefix(gif.count * 6 / 10))
        let thumb = try Thumbnailer().makeThumbnail(from: cut, spec: .fit320)
        #expect(thumb.isPartial && thumb.width == 96)
        let partial = try Thumbnailer().decode(cut)
        #expect(pixel(partial, 48, 79) == [128, 128, 128, 255], "missing rows are grey")
    }

    /// Every prefix and random damage: a result or a ThumbnailError, never a crash (also run under ASan while the
    /// C wrappers were written). The decoding runs off the cooperative pool, as above.
    @Test func damagedFilesAreSafe() async throws {
        let source = testPicture(width: 48, height: 40, seed: 10)
        let files: [(String, [UInt8])] = [
            ("gif", try await Formats.make(source, "fuzz.gif") { png, out in try await Formats.convert([png, out]) }),
            ("animated gif", try readFile(try await Formats.animatedGIF())),
            ("webp", try await Formats.make(source, "fuzz.webp") { png, out in
                try await Formats.tool("cwebp", ["-quiet", "-q", "70", png, "-o", out])
            }),
            ("lossless webp", try await Formats.make(source, "fuzz-ll.webp") { png, out in
                try await Formats.tool("cwebp", ["-quiet", "-lossless", png, "-o", out])
            }),
            ("animated webp", try readFile(try await Formats.animatedWebP())),
            ("heic", try await Formats.make(source, "fuzz.heic") { png, out in
                try await Formats.tool("heif-enc", ["--no-alpha", "-q", "60", png, "-o", out])
            }),
        ]
        /// What one file gave: prefixes refused, damaged copies whose result was wrong (thumbnails missing, an empty
        /// error text), thumbnails of the intact file.
        struct Outcome: Sendable {
            var name: String
            var prefixFailures = 0
            var wrong: [String] = []
            var intactThumbnails = 0
        }
        let outcomes = try await offPool { () -> [Outcome] in
            var state: UInt32 = 777
            return files.map { name, bytes in
                var outcome = Outcome(name: name)
                for n in stride(from: 0, to: bytes.count, by: max(1, bytes.count / 60)) {
                    do throws(ThumbnailError) {
                        _ = try Thumbnailer().makeThumbnails(from: Array(bytes.prefix(n)))
                    } catch {
                        outcome.prefixFailures += 1
                        if error.description.isEmpty { outcome.wrong.append("prefix \(n): empty error text") }
                    }
                }
                for round in 0..<60 {
                    var damaged = bytes
                    for _ in 0..<4 {
                        state = state &* 1_664_525 &+ 1_013_904_223
                        let at = 12 + Int(state >> 8) % (damaged.count - 12)
                        damaged[at] ^= UInt8(truncatingIfNeeded: state >> 3) | 1
                    }
                    do throws(ThumbnailError) {
                        let thumbs = try Thumbnailer().makeThumbnails(from: damaged)
                        if thumbs.count != ThumbnailSpec.defaults.count { outcome.wrong.append("round \(round): \(thumbs.count) thumbnails") }
                        _ = try? Thumbnailer().probe(damaged)
                    } catch {
                        if error.description.isEmpty { outcome.wrong.append("round \(round): empty error text") }
                    }
                }
                outcome.intactThumbnails = (try? Thumbnailer().makeThumbnails(from: bytes).count) ?? 0
                return outcome
            }
        }
        #expect(outcomes.count == files.count)
        for outcome in outcomes {
            #expect(outcome.prefixFailures > 0, "\(outcome.name): no prefix failed")
            #expect(outcome.wrong.isEmpty, "\(outcome.name): \(outcome.wrong)")
            #expect(outcome.intactThumbnails == 3, "\(outcome.name) itself")
        }
    }

    @Test func unknownFormatsAndNonImagesAreStillRefused() throws {
        let thumbnailer = Thumbnailer()
        #expect(throws: ThumbnailError.unsupportedFormat) { _ = try thumbnailer.decode(Array("RIFF\u{0}\u{0}\u{0}\u{0}WAVEfmt ".utf8)) }
        // An AVIF is a HEIF-family file, but not HEIC/HEIF: not ours.
        var avif = [UInt8]([0, 0, 0, 0x1C]) + Array("ftypavif".utf8) + [0, 0, 0, 0] + Array("mif1miafavif".utf8)
        avif += [UInt8](repeating: 0, count: 16)
        #expect(throws: ThumbnailError.unsupportedFormat) { _ = try thumbnailer.decode(avif) }
        #expect(ThumbnailError.unsupportedFormat.description.contains("GIF, WebP or HEIC/HEIF"))
    }
}

/// Test files: generated pictures written as PNG, converted by the real tools, in one temporary directory.
enum Formats {
    static let directory: String = {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("formats-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }()

    static func path(_ name: String) -> String { directory + "/" + name }

    static let tools = ["convert": "imagemagick", "gifsicle": "gifsicle", "cwebp": "webp", "img2webp": "webp",
                        "heif-enc": "libheif-examples"]

    /// Runs a tool from /usr/bin (ImageMagick's real convert, not a stand-in earlier on PATH).
    static func tool(_ name: String, _ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let path = try requireTool(["/usr/bin/" + name], install: "apt-get install -y \(tools[name] ?? name)",
                                   sourceLocation: sourceLocation)
        _ = try await run(path, arguments, sourceLocation: sourceLocation)
    }

    static func convert(_ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) async throws {
        try await tool("convert", arguments, sourceLocation: sourceLocation)
    }

    /// Three frames that differ everywhere: the test picture, mirrored, and upside down.
    static func distinctFrames(width: Int, height: Int) -> [RGBAImage] {
        let picture = testPicture(width: width, height: height, seed: 12)
        return [picture, Orientation.apply(2, to: picture), Orientation.apply(4, to: picture)]
    }

    static func writePNG(_ image: RGBAImage, _ name: String) throws -> String {
        let path = path(name)
        try Data(try PNGCodec.encode(image, compressionLevel: 1)).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// `image` as PNG, turned into `name` by `convert(png, out)`; the result's bytes.
    static func make(_ image: RGBAImage, _ name: String,
                     _ convert: (String, String) async throws -> Void) async throws -> [UInt8] {
        let png = try writePNG(image, name + ".png")
        try await convert(png, path(name))
        return try readFile(path(name))
    }

    static func animatedGIF() async throws -> String {
        let out = path("fuzz-anim.gif")
        let pngs = try (1...3).map { try writePNG(testPicture(width: 32, height: 24, seed: UInt32($0)), "fa-\($0).png") }
        try await convert(["-delay", "10"] + pngs + [out])
        return out
    }

    static func animatedWebP() async throws -> String {
        let out = path("fuzz-anim.webp")
        let pngs = try (1...3).map { try writePNG(testPicture(width: 32, height: 24, seed: UInt32($0)), "wa-\($0).png") }
        try await tool("img2webp", ["-lossy", "-q", "60"] + pngs + ["-o", out])
        return out
    }

    /// libheif's encoder with irot/imir for `orientation` (heif-enc 1.15 cannot write them) and an Exif item.
    static func encodeHEIC(_ image: RGBAImage, orientation: Int, exif: [UInt8]) throws -> [UInt8] {
        var out: UnsafeMutablePointer<UInt8>?
        var size = 0
        var st = ic_status()
        let code = image.pixels.withUnsafeBufferPointer { pixels in
            exif.withUnsafeBufferPointer { exif in
                ic_heif_encode_rgba(pixels.baseAddress, Int32(image.width), Int32(image.height), 90, Int32(orientation),
                                    exif.baseAddress, exif.count, &out, &size, &st)
            }
        }
        defer { ic_free(out) }
        guard let bytes = out else { throw TestFailure("HEIC encoding failed (\(code.rawValue)): \(Codec.message(st))") }
        return [UInt8](UnsafeBufferPointer(start: bytes, count: size))
    }

    static func range(of needle: [UInt8], in bytes: [UInt8]) -> Range<Int>? {
        guard needle.count <= bytes.count else { return nil }
        for start in 0...(bytes.count - needle.count) where bytes[start..<(start + needle.count)].elementsEqual(needle) {
            return start..<(start + needle.count)
        }
        return nil
    }

    static func contains(_ bytes: [UInt8], _ needle: [UInt8]) -> Bool { range(of: needle, in: bytes) != nil }

    /// Every `ispe` box (image spatial extents: version/flags, then 32-bit width and height) set to side x side.
    static func patchingISPE(_ heic: [UInt8], side: UInt32) -> [UInt8] {
        var bytes = heic
        var from = 0
        while let found = range(of: Array("ispe".utf8), in: Array(bytes[from...])) {
            let at = from + found.upperBound + 4
            bytes.replaceSubrange(at..<(at + 8), with: PNGCraft.be32(side) + PNGCraft.be32(side))
            from = at + 8
        }
        return bytes
    }
}

/// A minimal GIF made by hand, for sizes no tool writes: a two-colour table and one frame. Its LZW data is clear,
/// a zero per pixel for a frame of at most two pixels (all 3-bit codes), then end; a larger frame gets clear and end
/// only (refused before decoding anyway).
enum GIFCraft {
    static func gif(screen: (Int, Int), frame: (Int, Int)) -> [UInt8] {
        func le16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)] }
        var bytes = Array("GIF89a".utf8) + le16(screen.0) + le16(screen.1) + [0x80, 0, 0] // global table, 2 colours
        bytes += [0, 0, 0, 255, 255, 255]
        bytes += [0x2C] + le16(0) + le16(0) + le16(frame.0) + le16(frame.1) + [0]
        let pixels = frame.0 * frame.1
        let codes = [4] + [Int](repeating: 0, count: pixels <= 2 ? pixels : 0) + [5] // clear, pixels, end
        var data: [UInt8] = [], acc = 0, n = 0
        for code in codes {
            acc |= code << n
            n += 3
            while n >= 8 { data.append(UInt8(acc & 0xFF)); acc >>= 8; n -= 8 }
        }
        if n > 0 { data.append(UInt8(acc & 0xFF)) }
        return bytes + [2, UInt8(data.count)] + data + [0, 0x3B]
    }
}
