import Testing
@testable import Thumbnailer

/// The server makes thumbnails of several uploads at once: no shared state between calls.
@Suite struct ConcurrencyTests {
    @Test func parallelThumbnailsMatchSequentialOnes() async throws {
        var inputs: [[UInt8]] = []
        for seed in 1...6 {
            let picture = testPicture(width: 200 + seed * 37, height: 150 + seed * 11, seed: UInt32(seed))
            inputs.append(seed % 2 == 0 ? try JPEGCodec.encode(picture, quality: 85)
                                        : try PNGCodec.encode(picture, compressionLevel: 1))
        }
        inputs.append(try Corpus.bytes("jpeg/testimgari.jpg"))
        inputs.append(try Corpus.bytes("pngsuite/png/basn6a16.png"))
        let thumbnailer = Thumbnailer()
        let sequential = try inputs.map { try thumbnailer.makeThumbnails(from: $0) }
        let parallel = try await withThrowingTaskGroup(of: (Int, [ThumbnailSpec: Thumbnail]).self) { group in
            for _ in 0..<3 {
                for (i, input) in inputs.enumerated() {
                    group.addTask { (i, try thumbnailer.makeThumbnails(from: input)) }
                }
            }
            var results: [(Int, [ThumbnailSpec: Thumbnail])] = []
            for try await result in group { results.append(result) }
            return results
        }
        #expect(parallel.count == inputs.count * 3)
        for (i, thumbs) in parallel { #expect(thumbs == sequential[i], "input \(i)") }
    }
}
