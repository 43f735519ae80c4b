import Foundation
import ImageBuffer
import Testing
@testable import Thumbnailer

/// Limits and damaged files: refused with the right error, or a partial image; never a crash.
@Suite struct HostileInputTests {
    @Test func craftedPNGHelperMakesValidFiles() throws {
        // The crafting code (CRC, zlib) is right: a 2x2 image made the same way decodes to its pixels.
        let rows: [UInt8] = [0, 255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 0, 255, 255, 1, 2, 3, 4]
        let png = PNGCraft.png(width: 2, height: 2, rows: rows)
        let image = try Thumbnailer().decode(png)
        #expect(image.pixels == [255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255, 1, 2, 3, 4])
    }

    /// APNG: the default image (IDAT) is shown; acTL/fcTL/fdAT are skipped.
    @Test func apngShowsDefaultImage() throws {
        let first: [UInt8] = [0, 255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 0, 255, 255, 1, 2, 3, 4]
        let second: [UInt8] = [0, 9, 9, 9, 255, 9, 9, 9, 255, 0, 9, 9, 9, 255, 9, 9, 9, 255]
        let ihdr = PNGCraft.be32(2) + PNGCraft.be32(2) + [8, 6, 0, 0, 0]
        func fcTL(_ sequence: UInt32) -> [UInt8] {
            PNGCraft.chunk("fcTL", PNGCraft.be32(sequence) + PNGCraft.be32(2) + PNGCraft.be32(2) + PNGCraft.be32(0)
                + PNGCraft.be32(0) + [0, 1, 0, 10, 0, 0])
        }
        let apng = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + PNGCraft.chunk("IHDR", ihdr)
            + PNGCraft.chunk("acTL", PNGCraft.be32(2) + PNGCraft.be32(0)) + fcTL(0)
            + PNGCraft.chunk("IDAT", PNGCraft.zlibStored(first)) + fcTL(1)
            + PNGCraft.chunk("fdAT", PNGCraft.be32(2) + PNGCraft.zlibStored(second)) + PNGCraft.chunk("IEND", [])
        let image = try Thumbnailer().decode(apng)
        #expect(image.pixels == [255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255, 1, 2, 3, 4])
        #expect(try Thumbnailer().makeThumbnail(from: apng, spec: .fit320).format == .png)
    }

    @Test func pngClaiming60000x60000IsRefusedBeforeDecoding() throws {
        let png = PNGCraft.png(width: 60000, height: 60000, rows: [UInt8](repeating: 0, count: 600))
        #expect(png.count < 1024)
        let expected = ThumbnailError.tooManyPixels(width: 60000, height: 60000, limit: 50_000_000)
        let thumbnailer = Thumbnailer()
        #expect(throws: expected) { _ = try thumbnailer.probe(png) }
        #expect(throws: expected) { _ = try thumbnailer.decode(png) }
        #expect(throws: expected) { _ = try thumbnailer.makeThumbnails(from: png) }
        #expect(expected.description.contains("60000x60000"))
        // Under the pixel limit but too wide.
        let wide = PNGCraft.png(width: 40000, height: 10, rows: [0])
        #expect(throws: ThumbnailError.dimensionTooLarge(width: 40000, height: 10, limit: 30000)) {
            _ = try thumbnailer.decode(wide)
        }
        // A raised limit lets the header through; the missing data is then reported, not allocated blindly.
        var generous = ThumbnailerLimits()
        generous.maxPixels = 2_000_000
        generous.maxDimension = 65535
        let small = PNGCraft.png(width: 1000, height: 1000, rows: [0, 1, 2])
        #expect(throws: ThumbnailError.self) { _ = try Thumbnailer(limits: generous).decode(small) }
    }

    @Test func jpegClaiming60000x60000IsRefused() throws {
        var jpeg = try Corpus.bytes("jpeg/testorig.jpg")
        let sof = try #require(JPEGCraft.markers(jpeg).first { $0.code == 0xC0 })
        jpeg.replaceSubrange(sof.offset + 5 ..< sof.offset + 9, with: [0xEA, 0x60, 0xEA, 0x60]) // 60000 each
        let expected = ThumbnailError.tooManyPixels(width: 60000, height: 60000, limit: 50_000_000)
        #expect(throws: expected) { _ = try Thumbnailer().probe(jpeg) }
        #expect(throws: expected) { _ = try Thumbnailer().makeThumbnail(from: jpeg, spec: .fit320) }
    }

    @Test func otherRefusals() throws {
        let thumbnailer = Thumbnailer()
        #expect(throws: ThumbnailError.emptyInput) { _ = try thumbnailer.decode([UInt8]()) }
        #expect(throws: ThumbnailError.unsupportedFormat) { _ = try thumbnailer.decode(Array("BM....\u{0}\u{0}\u{0}\u{0}".utf8)) }
        // A GIF signature is a GIF now: cut before its screen descriptor.
        #expect(throws: ThumbnailError.truncated(format: .gif, detail: "GIF data ends early")) {
            _ = try thumbnailer.decode(Array("GIF89a....".utf8))
        }
        var small = ThumbnailerLimits()
        small.maxInputBytes = 100
        let jpeg = try Corpus.bytes("jpeg/testorig.jpg")
        #expect(throws: ThumbnailError.inputTooLarge(bytes: jpeg.count, limit: 100)) {
            _ = try Thumbnailer(limits: small).decode(jpeg)
        }
    }

    @Test func truncatedBaselineJPEGGivesPartialImage() throws {
        let jpeg = try Corpus.bytes("jpeg/testorig.jpg")
        let full = try Thumbnailer().decode(jpeg)
        let cut = Array(jpeg.prefix(jpeg.count * 6 / 10))
        let decoded = try cut.withUnsafeBytes { raw in
            try JPEGCodec.decode(InputBytes(borrowing: raw), target: .full, limits: ThumbnailerLimits())
        }
        #expect(decoded.partial)
        #expect(decoded.image.width == full.width && decoded.image.height == full.height)
        // Top rows as in the full decode, the bottom left grey where data is missing.
        #expect(Array(decoded.image.pixels.prefix(full.width * 4 * 16)) == Array(full.pixels.prefix(full.width * 4 * 16)))
        let bottom = pixel(decoded.image, full.width / 2, full.height - 2)
        #expect(bottom == [128, 128, 128, 255], "bottom pixel \(bottom)")
        let thumb = try Thumbnailer().makeThumbnail(from: cut, spec: .fit320)
        #expect(thumb.isPartial && thumb.format == .jpeg)

        // Large enough for the second resizing thread: the same partial thumbnails as on one thread.
        let large = try JPEGCodec.encode(testPicture(width: 640, height: 400, seed: 5), quality: 85)
        let largeCut = Array(large.prefix(large.count * 6 / 10))
        let (one, two) = try largeCut.withUnsafeBytes { raw in
            (try Thumbnailer().render(InputBytes(borrowing: raw), specs: ThumbnailSpec.defaults, threaded: false),
             try Thumbnailer().render(InputBytes(borrowing: raw), specs: ThumbnailSpec.defaults, threaded: true))
        }
        #expect(one.partial && two.partial)
        #expect(one.images == two.images)
        #expect(640 * 400 >= Thumbnailer.pipelineMinimumPixels, "the large picture must take the threaded path")
        // Cut inside the header: nothing to show.
        let header = Array(jpeg.prefix(100))
        do {
            _ = try Thumbnailer().decode(header)
            Issue.record("a 100-byte prefix decoded")
        } catch {
            guard case .truncated(.jpeg, _) = error else {
                Issue.record("expected truncated, got \(error)")
                return
            }
        }
    }

    @Test func truncatedPNGGivesPartialImageOrError() throws {
        let bytes = try PNGCodec.encode(testPicture(width: 256, height: 256), compressionLevel: 6)
        let full = try Thumbnailer().decode(bytes)
        let cut = Array(bytes.prefix(bytes.count * 6 / 10))
        let decoded = try cut.withUnsafeBytes { raw in
            try PNGCodec.decode(InputBytes(borrowing: raw), limits: ThumbnailerLimits())
        }
        #expect(decoded.partial)
        let rowBytes = full.width * 4
        let intact = zip(decoded.image.pixels, full.pixels).prefix { $0 == $1 }.count / rowBytes
        #expect(intact >= 1 && intact < full.height, "\(intact) intact rows")
        #expect(pixel(decoded.image, 0, full.height - 1) == [128, 128, 128, 255])
        #expect(try Thumbnailer().makeThumbnail(from: cut, spec: .fit320).isPartial)
        // Interlaced: a cut file is an error (the passes spread missing data over the whole image).
        let interlaced = try Corpus.bytes("pngsuite/png/basi6a08.png")
        #expect(throws: ThumbnailError.self) { _ = try Thumbnailer().decode(Array(interlaced.prefix(interlaced.count * 7 / 10))) }
        // Cut inside the header.
        do {
            _ = try Thumbnailer().decode(Array(bytes.prefix(40)))
            Issue.record("a 40-byte prefix decoded")
        } catch {
            guard case .truncated(.png, _) = error else {
                Issue.record("expected truncated, got \(error)")
                return
            }
        }
    }

    /// Every prefix of a few files: a result or a ThumbnailError, never a crash or hang.
    @Test func everyPrefixIsSafe() throws {
        let progressive = try JPEGCodec.encode(testPicture(width: 96, height: 64), quality: 80)
        let files: [(String, [UInt8], Int)] = [
            ("testorig.jpg", try Corpus.bytes("jpeg/testorig.jpg"), 37),
            ("testimgari.jpg", try Corpus.bytes("jpeg/testimgari.jpg"), 41),
            ("progressive", progressive, 13),
            ("basn2c08.png", try Corpus.bytes("pngsuite/png/basn2c08.png"), 3),
            ("basi3p04.png", try Corpus.bytes("pngsuite/png/basi3p04.png"), 3),
            ("basn4a16.png", try Corpus.bytes("pngsuite/png/basn4a16.png"), 7),
        ]
        for (name, bytes, step) in files {
            var successes = 0, failures = 0
            for n in stride(from: 0, to: bytes.count, by: step) {
                do {
                    let thumb = try Thumbnailer().makeThumbnail(from: Array(bytes.prefix(n)), spec: .fit320)
                    #expect(thumb.width > 0 && !thumb.bytes.isEmpty)
                    successes += 1
                } catch {
                    #expect(!error.description.isEmpty)
                    failures += 1
                }
            }
            // Short prefixes must fail, long ones of non-interlaced files mostly succeed as partial images.
            #expect(failures > 0, "\(name): no prefix failed")
            if !name.hasPrefix("basi") { #expect(successes > 0, "\(name): no prefix gave a partial image") }
        }
    }

    /// Corrupted bytes in the middle of the data: errors or images, no crash.
    @Test func flippedBytesAreSafe() throws {
        // The 320x220 JPEG is large enough for the second resizing thread (Thumbnailer.pipelineMinimumPixels); fewer
        // rounds of it keep the debug build's test time down.
        let sources = [(try Corpus.bytes("jpeg/testorig.jpg"), 150),
                       (try JPEGCodec.encode(testPicture(width: 96, height: 64), quality: 80), 150),
                       (try Corpus.bytes("pngsuite/png/basn6a08.png"), 150),
                       (try JPEGCodec.encode(testPicture(width: 320, height: 220, seed: 9), quality: 80), 30)]
        #expect(320 * 220 >= Thumbnailer.pipelineMinimumPixels)
        var state: UInt32 = 12345
        for (source, rounds) in sources {
            for _ in 0..<rounds {
                var bytes = source
                for _ in 0..<4 {
                    state = state &* 1_664_525 &+ 1_013_904_223
                    let at = 2 + Int(state >> 8) % (bytes.count - 2)
                    bytes[at] ^= UInt8(truncatingIfNeeded: state >> 3) | 1
                }
                do {
                    let thumbs = try Thumbnailer().makeThumbnails(from: bytes)
                    #expect(thumbs.count == ThumbnailSpec.defaults.count)
                } catch {
                    #expect(!error.description.isEmpty)
                }
            }
        }
    }
}
