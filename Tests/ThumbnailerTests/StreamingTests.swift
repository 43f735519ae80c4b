import ImageBuffer
import Testing
@testable import Thumbnailer

/// Rows stream from the decoder to the resizers strip by strip, on a second thread for larger images: the result
/// must not depend on how the rows were cut up or which thread resized them.
@Suite struct StreamingTests {
    /// A whole image pushed at once, row by row, and in uneven strips gives the same pixels, for a plain fit,
    /// a crop and a box-reduced size, opaque and translucent.
    @Test(arguments: [false, true])
    func stripSizesDoNotChangeTheResult(translucent: Bool) throws {
        var picture = testPicture(width: 301, height: 203, seed: 7)
        if translucent {
            for i in stride(from: 3, to: picture.pixels.count, by: 4 * 3) { picture.pixels[i] = UInt8(i % 251) }
        }
        let geometry = Geometry(format: .png, fullWidth: 301, fullHeight: 203, width: 301, height: 203, scale: 1,
                                orientation: 1)
        for spec in [ThumbnailSpec.fit320, try #require(ThumbnailSpec("fit97")), try #require(ThumbnailSpec("crop40")),
                     try #require(ThumbnailSpec("fit23"))] {
            let whole = Thumbnailer.stream(for: spec, geometry: geometry, opaque: !translucent)
            whole.push(picture)
            let expected = whole.finish()
            for strip in [1, 7, 16, 64] {
                let stream = Thumbnailer.stream(for: spec, geometry: geometry, opaque: !translucent)
                picture.pixels.withUnsafeBufferPointer { buffer in
                    guard let base = buffer.baseAddress else { return }
                    var row = 0
                    while row < picture.height {
                        let rows = min(strip, picture.height - row)
                        stream.push(base + row * picture.width * 4, rows: rows)
                        row += rows
                    }
                }
                #expect(stream.isComplete, "\(spec), strips of \(strip)")
                #expect(stream.finish() == expected, "\(spec), strips of \(strip)")
            }
        }
    }

    /// A source that stops early (the caller gives up) still gives an image of the right size: missing rows repeat
    /// the last one, and with no rows at all the image is transparent black.
    @Test func missingRowsRepeatTheLastOne() throws {
        let picture = testPicture(width: 100, height: 80, seed: 3)
        let geometry = Geometry(format: .png, fullWidth: 100, fullHeight: 80, width: 100, height: 80, scale: 1,
                                orientation: 1)
        let spec = try #require(ThumbnailSpec("fit50"))
        let stream = Thumbnailer.stream(for: spec, geometry: geometry, opaque: true)
        picture.pixels.withUnsafeBufferPointer { buffer in
            if let base = buffer.baseAddress { stream.push(base, rows: 40) }
        }
        #expect(!stream.isComplete)
        let half = stream.finish()
        #expect(half.width == 50 && half.height == 40)

        // The same rows with row 39 repeated to the bottom, pushed in full, give the same image.
        var padded = picture
        let rowBytes = 100 * 4
        for y in 40..<80 {
            padded.pixels.replaceSubrange(y * rowBytes..<(y + 1) * rowBytes,
                                          with: picture.pixels[39 * rowBytes..<40 * rowBytes])
        }
        let full = Thumbnailer.stream(for: spec, geometry: geometry, opaque: true)
        full.push(padded)
        #expect(full.finish() == half)

        let empty = Thumbnailer.stream(for: spec, geometry: geometry, opaque: false).finish()
        #expect(empty.width == 50 && empty.height == 40 && empty.pixels.allSatisfy { $0 == 0 })
    }

    /// A real photo: the two-thread pipeline and the one-thread loop give the same thumbnails, for one size and
    /// for the server's three from one decode.
    @Test func threadedPipelineMatchesOneThread() throws {
        let photo = try Corpus.bytes("jpeg/testorig.jpg")
        let thumbnailer = Thumbnailer()
        for specs in [[ThumbnailSpec.fit320], ThumbnailSpec.defaults] {
            let (one, two) = try photo.withUnsafeBytes { raw in
                (try thumbnailer.render(InputBytes(borrowing: raw), specs: specs, threaded: false),
                 try thumbnailer.render(InputBytes(borrowing: raw), specs: specs, threaded: true))
            }
            #expect(one.images == two.images, "\(specs)")
            #expect(one.partial == false && two.partial == false)
            #expect(one.images.count == specs.count)
        }
    }

    /// A decoder that fails part way: the error comes back, the second thread stops, and it saw exactly the
    /// strips made before the failure, in order.
    @Test(arguments: [false, true])
    func producerFailureStopsThePipeline(threaded: Bool) throws {
        final class Seen: @unchecked Sendable { var first: [UInt8] = [] } // written by the consumer, read after join
        let seen = Seen()
        var made = 0
        #expect(throws: ThumbnailError.truncated(format: .jpeg, detail: "test")) {
            try StripPipeline.run(
                rowBytes: 8, stripRows: 4, threaded: threaded,
                produce: { (strip, maxRows) throws(ThumbnailError) -> Int in
                    guard made < 20 else { throw .truncated(format: .jpeg, detail: "test") }
                    for i in 0..<(maxRows * 8) { strip[i] = UInt8(made) }
                    made += 1
                    return maxRows
                },
                consume: { strip, rows in
                    #expect(rows == 4)
                    seen.first.append(strip[0])
                })
        }
        #expect(seen.first == (0..<20).map { UInt8($0) })
    }

    /// The end of the rows (0 from the producer) ends the pipeline with every strip consumed.
    @Test func pipelineDeliversEveryStripInOrder() throws {
        final class Seen: @unchecked Sendable { var rows: [Int] = [] }
        let seen = Seen()
        var left = 1000
        try StripPipeline.run(
            rowBytes: 4, stripRows: 16, threaded: true,
            produce: { (strip, maxRows) throws(ThumbnailError) -> Int in
                let n = min(maxRows, left, 1 + left % 13)
                for r in 0..<n { strip[r * 4] = UInt8(truncatingIfNeeded: 1000 - left + r) }
                left -= n
                return n
            },
            consume: { strip, rows in
                for r in 0..<rows { seen.rows.append(Int(strip[r * 4])) }
            })
        #expect(seen.rows == (0..<1000).map { $0 & 0xFF })
    }
}
