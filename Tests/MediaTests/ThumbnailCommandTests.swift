import Foundation
import Testing
import Thumbnailer

/// `chat-thumbnail IN OUT --size S` through the built executable.
@Suite("chat-thumbnail")
struct ThumbnailCommandTests {
    /// ../shared/corpus next to the package (see its README.md).
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../shared/corpus")
        .standardized.path

    @Test("writes exactly the thumbnail the server makes; refuses a damaged file and a bad size with nothing written")
    func command() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("thumb-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let source = Self.corpus + "/jpeg/testorig.jpg"
        let input = try #require(FileManager.default.contents(atPath: source), "corpus file \(source) missing")

        let made = try await runBuilt("chat-thumbnail", [source, directory + "/small.jpg", "--size", "fit96"])
        #expect(made.status == 0 && made.stderr.isEmpty, "\(made.stderr)")
        let expected = try Thumbnailer().makeThumbnail(from: [UInt8](input), spec: try ThumbnailSpec(parsing: "fit96"))
        #expect(expected.width == 96, "the corpus photo is wider than tall")
        #expect(FileManager.default.contents(atPath: directory + "/small.jpg") == Data(expected.bytes))

        let damaged = directory + "/damaged.jpg"
        try Data(input.prefix(200)).write(to: URL(fileURLWithPath: damaged))
        let refused = try await runBuilt("chat-thumbnail", [damaged, directory + "/out.jpg"])
        #expect(refused.status == 1)
        #expect(refused.stderr.split(separator: "\n").count == 1 && refused.stderr.contains(damaged), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: directory + "/out.jpg"))

        let badSize = try await runBuilt("chat-thumbnail", [source, directory + "/out.jpg", "--size", "enormous"])
        #expect(badSize.status == 64, "bad usage: \(badSize.stderr)")
        #expect(!FileManager.default.fileExists(atPath: directory + "/out.jpg"))
    }
}
