import Foundation
import Testing
@testable import Thumbnailer

/// The file helper behind `chat-thumbnail IN OUT --size fit320`.
@Suite struct FileTests {
    let dir: URL

    init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("thumb-files-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    @Test func writesThumbnailFile() throws {
        let input = dir.appendingPathComponent("in.jpg").path
        let output = dir.appendingPathComponent("out.jpg").path
        let jpeg = try JPEGCodec.encode(testPicture(width: 1000, height: 500), quality: 90)
        try Data(jpeg).write(to: URL(fileURLWithPath: input))
        let thumb = try Thumbnailer().makeThumbnail(inputPath: input, outputPath: output, spec: .fit320)
        #expect(thumb.width == 320 && thumb.height == 160 && thumb.format == .jpeg)
        let written = try readFile(output)
        #expect(written == thumb.bytes)
        let info = try Thumbnailer().probe(written)
        #expect(info.width == 320 && info.height == 160)
        // No temporary file left behind.
        let left = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        #expect(left == ["in.jpg", "out.jpg"])

        let all = try Thumbnailer().makeThumbnails(inputPath: input)
        #expect(all[.fit800]?.width == 800 && all[.crop96]?.height == 96)

        // Several files from one decode, in the order asked, each exactly the in-memory thumbnail.
        let outputs = [(ThumbnailSpec.fit800, dir.appendingPathComponent("big.jpg").path),
                       (ThumbnailSpec.crop96, dir.appendingPathComponent("small.jpg").path)]
        let several = try Thumbnailer().makeThumbnails(inputPath: input, outputs: outputs)
        #expect(several.map(\.width) == [800, 96])
        for (thumbnail, output) in zip(several, outputs) {
            #expect(try readFile(output.1) == thumbnail.bytes)
            #expect(thumbnail == all[output.0])
        }
        try? FileManager.default.removeItem(at: dir)
    }

    @Test func reportsFileErrors() throws {
        let missing = dir.appendingPathComponent("missing.jpg").path
        do {
            try Thumbnailer().makeThumbnail(inputPath: missing, outputPath: dir.appendingPathComponent("x.jpg").path,
                                            spec: .fit320)
            Issue.record("missing input accepted")
        } catch {
            guard case .fileError(let path, "open", ENOENT, _) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(path == missing)
            #expect(error.description.contains("No such file"))
        }
        let input = dir.appendingPathComponent("in.png").path
        try Data(try Corpus.bytes("pngsuite/png/basn6a08.png")).write(to: URL(fileURLWithPath: input))
        let badOutput = dir.appendingPathComponent("no-such-dir/out.png").path
        #expect(throws: ThumbnailError.self) {
            try Thumbnailer().makeThumbnail(inputPath: input, outputPath: badOutput, spec: .fit320)
        }
        let empty = dir.appendingPathComponent("empty.jpg").path
        try Data().write(to: URL(fileURLWithPath: empty))
        #expect(throws: ThumbnailError.emptyInput) {
            try Thumbnailer().makeThumbnail(inputPath: empty, outputPath: badOutput, spec: .fit320)
        }
        try? FileManager.default.removeItem(at: dir)
    }
}
