import ImageBuffer
import Testing
@testable import Thumbnailer

/// EXIF orientation: files are made here (our JPEG encoder plus a spliced APP1 Exif segment) and checked by the
/// colours of the four quadrants of the upright result.
@Suite struct OrientationTests {
    typealias RGB = [Int]
    static let red: RGB = [255, 0, 0], green: RGB = [0, 255, 0], blue: RGB = [0, 0, 255], white: RGB = [255, 255, 255]

    /// Upright picture: top-left red, top-right green, bottom-left blue, bottom-right white. For each
    /// orientation, the quadrant colours of the stored picture (TL, TR, BL, BR), worked out from the EXIF
    /// definitions (e.g. 6: stored rotated 90° anticlockwise, so the viewer rotates it 90° clockwise).
    static let stored: [Int: [RGB]] = [
        1: [red, green, blue, white],
        2: [green, red, white, blue],  // mirrored horizontally
        3: [white, blue, green, red],  // rotated 180°
        4: [blue, white, red, green],  // mirrored vertically
        5: [red, blue, green, white],  // transposed
        6: [green, white, red, blue],
        7: [white, green, blue, red],  // transversed
        8: [blue, red, white, green],
    ]

    static func quadrants(width: Int, height: Int, _ colours: [RGB]) -> RGBAImage {
        var pixels = [UInt8](repeating: 255, count: width * height * 4)
        for y in 0..<height {
            for x in 0..<width {
                let q = (y < height / 2 ? 0 : 2) + (x < width / 2 ? 0 : 1)
                for c in 0..<3 { pixels[(y * width + x) * 4 + c] = UInt8(colours[q][c]) }
            }
        }
        return RGBAImage(width: width, height: height, pixels: pixels) ?? RGBAImage(width: width, height: height)
    }

    static func assertUpright(_ image: RGBAImage, orientation: Int, _ label: String) {
        let w = image.width, h = image.height
        let samples = [(w / 4, h / 4, red), (3 * w / 4, h / 4, green), (w / 4, 3 * h / 4, blue), (3 * w / 4, 3 * h / 4, white)]
        for (x, y, expected) in samples {
            let p = pixel(image, x, y)
            let ok = zip(p.prefix(3), expected).allSatisfy { abs(Int($0) - $1) <= 40 }
            #expect(ok, "\(label) orientation \(orientation): pixel (\(x),\(y)) is \(p), expected \(expected)")
        }
    }

    @Test(arguments: 1...8)
    func allEightOrientations(orientation: Int) throws {
        let swaps = orientation >= 5
        // Stored 64x32 (or 32x64 for orientations that swap axes); upright is always 64 wide, 32 high.
        let stored = Self.quadrants(width: swaps ? 32 : 64, height: swaps ? 64 : 32, try #require(Self.stored[orientation]))
        let plain = try JPEGCodec.encode(stored, quality: 95)
        for bigEndian in [true, false] {
            let jpeg = JPEGCraft.inserting(JPEGCraft.exifSegment(orientation: UInt16(orientation), bigEndian: bigEndian),
                                           into: plain)
            let label = bigEndian ? "MM" : "II"
            let thumbnailer = Thumbnailer()
            let info = try thumbnailer.probe(jpeg)
            #expect(info.orientation == orientation && info.width == 64 && info.height == 32, "\(label): \(info)")
            let upright = try thumbnailer.decode(jpeg)
            #expect(upright.width == 64 && upright.height == 32, "\(label) orientation \(orientation)")
            Self.assertUpright(upright, orientation: orientation, label)
            // Thumbnails are upright too (resized in stored orientation, rotated last).
            let thumb = try thumbnailer.thumbnailImage(from: jpeg, spec: try #require(ThumbnailSpec("fit32")))
            #expect(thumb.width == 32 && thumb.height == 16, "\(label) thumbnail \(thumb.width)x\(thumb.height)")
            Self.assertUpright(thumb, orientation: orientation, "\(label) thumbnail")
        }
    }

    @Test func malformedExifIsIgnored() throws {
        let plain = try JPEGCodec.encode(Self.quadrants(width: 64, height: 32, [Self.red, Self.green, Self.blue, Self.white]),
                                         quality: 95)
        var segment = JPEGCraft.exifSegment(orientation: 6, bigEndian: true)
        // IFD0 offset pointing far past the segment: must not be followed.
        segment[4 + 6 + 4 ..< 4 + 6 + 8] = [0x7F, 0xFF, 0xFF, 0xF0]
        let jpeg = JPEGCraft.inserting(segment, into: plain)
        let image = try Thumbnailer().decode(jpeg)
        #expect(image.width == 64 && image.height == 32)
        Self.assertUpright(image, orientation: 1, "bad offset")
        // Out-of-range orientation value.
        let bad = JPEGCraft.inserting(JPEGCraft.exifSegment(orientation: 9, bigEndian: false), into: plain)
        #expect(try Thumbnailer().probe(bad).orientation == 1)
        // Truncated TIFF data: every prefix is safe; the tag counts only once its value is inside.
        let full = JPEGCraft.exifSegment(orientation: 6, bigEndian: true)
        let tiff = Array(full[10...])
        let valueEnd = 8 + 2 + 12 + 8 + 2 // header, entry count, first entry, tag/type/count, value
        for n in 0..<tiff.count {
            let value = tiff.prefix(n).withUnsafeBytes { Exif.orientation(tiff: $0) }
            #expect(value == (n >= valueEnd ? 6 : 1), "prefix \(n) gave \(value)")
        }
        #expect(tiff.withUnsafeBytes { Exif.orientation(tiff: $0) } == 6)
    }
}
