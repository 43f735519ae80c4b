import Foundation
import ImageBuffer
import Testing
@testable import Thumbnailer

@Suite struct ResizeTests {
    /// A red opaque square on a transparent black background, downscaled: pixels that keep any alpha must stay
    /// pure red. Resizing straight (non-premultiplied) RGBA would mix in the black of the transparent pixels.
    @Test func noDarkFringeAroundTransparency() throws {
        let size = 64
        var pixels = [UInt8](repeating: 0, count: size * size * 4)
        for y in 21..<43 {
            for x in 21..<43 { pixels.replaceSubrange((y * size + x) * 4 ..< (y * size + x) * 4 + 4, with: [255, 0, 0, 255]) }
        }
        let source = try #require(RGBAImage(width: size, height: size, pixels: pixels))
        let png = try PNGCodec.encode(source, compressionLevel: 6)
        for spec in ["fit10", "fit16", "fit23", "crop20"] {
            let thumb = try Thumbnailer().thumbnailImage(from: png, spec: try #require(ThumbnailSpec(spec)))
            var edgePixels = 0
            var notRed: [[UInt8]] = []
            for p in 0..<(thumb.width * thumb.height) {
                let rgba = Array(thumb.pixels[(p * 4)..<(p * 4 + 4)])
                guard rgba[3] > 0 else { continue }
                if rgba[3] < 255 { edgePixels += 1 }
                if !(rgba[0] >= 253 && rgba[1] <= 2 && rgba[2] <= 2) { notRed.append(rgba) }
            }
            #expect(notRed.isEmpty, "\(spec): \(notRed.count) visible pixels are not red, e.g. \(notRed.prefix(3))")
            #expect(edgePixels > 0, "\(spec): no partially transparent edge pixels, test is not testing anything")
        }
        let encoded = try Thumbnailer().makeThumbnail(from: png, spec: .fit320)
        #expect(encoded.format == .png && encoded.mimeType == "image/png")
        #expect(encoded.width == 64 && encoded.height == 64) // never upscaled
    }

    @Test func opaqueGivesJPEGAndAlphaGivesPNG() throws {
        let opaque = try PNGCodec.encode(testPicture(width: 300, height: 200), compressionLevel: 1)
        let thumb = try Thumbnailer().makeThumbnail(from: opaque, spec: ThumbnailSpec.crop96)
        #expect(thumb.format == .jpeg && thumb.width == 96 && thumb.height == 96)
        let back = try Thumbnailer().probe(thumb.bytes)
        #expect(back.format == .jpeg && back.width == 96 && back.height == 96)
        // JPEG output is progressive (SOF2).
        #expect(JPEGCraft.markers(thumb.bytes).contains { $0.code == 0xC2 })

        var translucent = testPicture(width: 300, height: 200)
        translucent.pixels[3] = 128
        let png = try PNGCodec.encode(translucent, compressionLevel: 1)
        let thumbPNG = try Thumbnailer().makeThumbnail(from: png, spec: .crop96)
        // The one translucent pixel is in a corner, outside the centred crop: opaque result, JPEG.
        #expect(thumbPNG.format == .jpeg)
        let fit = try Thumbnailer().makeThumbnail(from: png, spec: .fit320)
        #expect(fit.format == .png && fit.width == 300 && fit.height == 200)
    }

    @Test func sizesAndNoUpscaling() throws {
        #expect(Thumbnailer.fitSize(width: 5640, height: 3172, longest: 320) == (320, 180))
        #expect(Thumbnailer.fitSize(width: 3172, height: 5640, longest: 320) == (180, 320))
        #expect(Thumbnailer.fitSize(width: 100, height: 1, longest: 320) == (100, 1))
        #expect(Thumbnailer.fitSize(width: 3000, height: 1, longest: 320) == (320, 1))

        let jpeg = try JPEGCodec.encode(testPicture(width: 640, height: 480), quality: 90)
        let all = try Thumbnailer().makeThumbnails(from: jpeg)
        #expect(Set(all.keys) == Set(ThumbnailSpec.defaults))
        let dims = all.mapValues { "\($0.width)x\($0.height)" }
        #expect(dims[.crop96] == "96x96")
        #expect(dims[.fit320] == "320x240")
        #expect(dims[.fit800] == "640x480") // smaller than 800: kept, not enlarged
        for (spec, thumb) in all {
            let info = try Thumbnailer().probe(thumb.bytes)
            #expect(info.width == thumb.width && info.height == thumb.height, "\(spec)")
        }

        let tiny = try PNGCodec.encode(testPicture(width: 50, height: 30), compressionLevel: 1)
        let crop = try Thumbnailer().thumbnailImage(from: tiny, spec: .crop96)
        #expect(crop.width == 30 && crop.height == 30)
        // Same size and whole-pixel crop: pixels are copied unchanged.
        let source = try Thumbnailer().decode(tiny)
        for y in 0..<30 {
            for x in 0..<30 { #expect(pixel(crop, x, y) == pixel(source, x + 10, y)) }
        }
    }

    @Test func cropIsCentred() throws {
        // 200x100: blue | red | green in thirds of 50 | 100 | 50. The centred square is the red part.
        var pixels = [UInt8](repeating: 255, count: 200 * 100 * 4)
        for y in 0..<100 {
            for x in 0..<200 {
                let colour: [UInt8] = x < 50 ? [0, 0, 255] : x < 150 ? [255, 0, 0] : [0, 255, 0]
                pixels.replaceSubrange((y * 200 + x) * 4 ..< (y * 200 + x) * 4 + 3, with: colour)
            }
        }
        let png = try PNGCodec.encode(try #require(RGBAImage(width: 200, height: 100, pixels: pixels)), compressionLevel: 1)
        let thumb = try Thumbnailer().thumbnailImage(from: png, spec: try #require(ThumbnailSpec("crop50")))
        #expect(thumb.width == 50 && thumb.height == 50)
        for (x, y) in [(2, 2), (47, 2), (25, 25), (2, 47), (47, 47)] {
            let p = pixel(thumb, x, y)
            #expect(p[0] >= 240 && p[1] <= 15 && p[2] <= 15, "(\(x),\(y)) = \(p)")
        }
    }

    /// A uniform image stays exactly uniform (weights sum to one, no ringing on flat areas).
    @Test func flatImageStaysFlat() throws {
        let flat = try #require(RGBAImage(width: 333, height: 217,
                                          pixels: [UInt8](repeating: 0, count: 333 * 217 * 4).enumerated().map {
                                              [UInt8(77), 140, 201, 255][$0.offset % 4]
                                          }))
        let png = try PNGCodec.encode(flat, compressionLevel: 1)
        for spec in [ThumbnailSpec.crop96, .fit320, ThumbnailSpec("fit17")].compactMap({ $0 }) {
            let thumb = try Thumbnailer().thumbnailImage(from: png, spec: spec)
            let distinct = Set(stride(from: 0, to: thumb.pixels.count, by: 4).map { Array(thumb.pixels[$0..<($0 + 4)]) })
            #expect(distinct == [[77, 140, 201, 255]], "\(spec): \(distinct.prefix(3))")
        }
    }

    @Test func specParsingAndCoding() throws {
        #expect(ThumbnailSpec("crop96") == .crop96)
        #expect(ThumbnailSpec("fit320") == .fit320)
        #expect(ThumbnailSpec("fit800")?.size == 800)
        #expect(ThumbnailSpec("fit4096")?.mode == .fit)
        for bad in ["", "fit", "crop", "fit0", "fit4097", "fit+5", "fit-5", "Fit320", "fit 32", "fit32px", "scale320", "crop٣"] {
            #expect(ThumbnailSpec(bad) == nil, "\(bad) accepted")
        }
        #expect(throws: ThumbnailError.invalidSpec("huge")) { _ = try ThumbnailSpec(parsing: "huge") }
        #expect(ThumbnailSpec.defaults.map(\.description) == ["crop96", "fit320", "fit800"])
        let json = try JSONEncoder().encode(ThumbnailSpec.defaults)
        #expect(String(decoding: json, as: UTF8.self) == #"["crop96","fit320","fit800"]"#)
        #expect(try JSONDecoder().decode([ThumbnailSpec].self, from: json) == ThumbnailSpec.defaults)
        #expect(throws: DecodingError.self) { _ = try JSONDecoder().decode([ThumbnailSpec].self, from: Data(#"["fit0"]"#.utf8)) }
    }
}
