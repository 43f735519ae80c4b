import ChatServerFixture
import Foundation
import Testing
import Thumbnailer

/// `chat-thumbnail IN OUT --size S` through the built executable.
@Suite("chat-thumbnail", .stopsServers)
struct ThumbnailCommandTests {
    /// ../shared/corpus next to the package (see its README.md).
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../shared/corpus")
        .standardized.path

    @Test("writes exactly the thumbnail the server makes; refuses a damaged file and a bad size with nothing written")
    func command() async throws {
        let directory = MediaServer.makeDirectory()
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
        #expect(badSize.stderr.contains("invalid --size 'enormous'"), "\(badSize.stderr)")
        #expect(!FileManager.default.fileExists(atPath: directory + "/out.jpg"))
    }

    @Test("parses its command line by hand: help, --size=, --, several sizes, and every usage error exits 64")
    func commandLine() async throws {
        let directory = MediaServer.makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let source = Self.corpus + "/jpeg/testorig.jpg"

        let help = try await runBuilt("chat-thumbnail", ["--help"])
        #expect(help.status == 0 && help.stderr.isEmpty)
        #expect(help.stdout.hasPrefix("USAGE: chat-thumbnail <input> <output> [--size <size> ...] [--one-thread]"),
                "\(help.stdout)")

        let equals = try await runBuilt("chat-thumbnail", ["--size=crop40", source, directory + "/crop.jpg"])
        #expect(equals.status == 0, "\(equals.stderr)")
        let crop = try Thumbnailer().probe([UInt8](try #require(FileManager.default.contents(atPath: directory + "/crop.jpg"))))
        #expect(crop.width == 40 && crop.height == 40)

        // After --, a name that starts with a dash is a file name.
        #expect(FileManager.default.createFile(atPath: directory + "/-odd.jpg", contents: FileManager.default.contents(atPath: source)))
        let dashed = try await runBuilt("chat-thumbnail", ["--size", "fit50", "--", directory + "/-odd.jpg", "-out.jpg"],
                                        currentDirectory: directory)
        #expect(dashed.status == 0, "\(dashed.stderr)")
        #expect(FileManager.default.fileExists(atPath: directory + "/-out.jpg"))

        // The server's three sizes from one decode, each the same bytes the server makes, with one thread or two.
        let input = [UInt8](try #require(FileManager.default.contents(atPath: source)))
        let server = try Thumbnailer().makeThumbnails(from: input)
        for extra in [[], ["--one-thread"]] {
            let sizes = try await runBuilt("chat-thumbnail", [source, directory + "/t-{size}.jpg", "--size", "crop96",
                                                              "--size", "fit320", "--size", "fit800"] + extra)
            #expect(sizes.status == 0, "\(extra): \(sizes.stderr)")
            for spec in ThumbnailSpec.defaults {
                let written = FileManager.default.contents(atPath: directory + "/t-\(spec).jpg")
                #expect(written == server[spec].map { Data($0.bytes) }, "\(spec) \(extra)")
            }
        }

        for (arguments, message) in [([String](), "missing <input> and <output>"), ([source], "missing <output>"),
                                     ([source, "a.jpg", "--size", "fit96", "--size", "crop20"],
                                      "with several sizes, <output> must contain {size}, e.g. 'thumb-{size}.jpg'"),
                                     ([source, "a-{size}.jpg", "--size", "fit96", "--size", "fit96"],
                                      "--size fit96 given twice"),
                                     ([source, "a.jpg", "b.jpg"], "unexpected argument 'b.jpg'"),
                                     ([source, "a.jpg", "--size"], "missing value for '--size <size>'"),
                                     ([source, "a.jpg", "--quality", "90"], "unknown option '--quality'")] {
            let bad = try await runBuilt("chat-thumbnail", arguments, currentDirectory: directory)
            #expect(bad.status == 64, "\(arguments)")
            #expect(bad.stderr.hasPrefix("Error: \(message)\n"), "\(arguments): \(bad.stderr)")
            #expect(!FileManager.default.fileExists(atPath: directory + "/a.jpg"))
        }
    }
}
