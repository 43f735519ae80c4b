import ChatProtocol
import ChatServerFixture
import Foundation
import TestProcesses
import Testing
import Thumbnailer

/// GIF, WebP and HEIC uploads through a real server get the three thumbnails, and chat-thumbnail makes the same.
@Suite("more formats", .stopsServers)
struct MoreFormatsUploadTests {
    /// Made with the real tools from one ImageMagick picture; the type libmagic is expected to report.
    static func samples(in directory: String) async throws -> [(name: String, type: String, frames: Int)] {
        func tool(_ name: String, _ arguments: [String]) async throws {
            let result = try await runTool("/usr/bin/" + name, arguments, currentDirectory: directory)
            guard result.status == 0 else { throw TestFailure("\(name) \(arguments) failed: \(result.stderr)") }
        }
        try await tool("convert", ["-size", "400x300", "gradient:orange-navy", "-depth", "8", "picture.png"])
        try await tool("convert", ["-size", "400x300", "plasma:", "-depth", "8", "second.png"])
        try await tool("convert", ["-delay", "20", "picture.png", "second.png", "animated.gif"])
        try await tool("cwebp", ["-quiet", "-q", "85", "picture.png", "-o", "photo.webp"])
        try await tool("img2webp", ["-lossy", "picture.png", "second.png", "-o", "animated.webp"])
        try await tool("heif-enc", ["-q", "70", "picture.png", "-o", "photo.heic"])
        return [("animated.gif", "image/gif", 2), ("photo.webp", "image/webp", 1), ("animated.webp", "image/webp", 2),
                ("photo.heic", "image/heic", 1)]
    }

    @Test("each format uploaded to a real server gets crop96, fit320 and fit800 thumbnails, served as JPEG, animations their frame count")
    func uploadsGetThumbnails() async throws {
        let work = MediaServer.makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: work) }
        let samples = try await Self.samples(in: work)
        let server = try await MediaServer.start()
        let token = try await server.makeToken("alice", role: .customer)
        let (alice, _) = try await server.connect("alice", token: token)
        for sample in samples {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: work + "/" + sample.name))
            let attachment = try await ServingTests.attach(bytes, name: sample.name, via: alice)
            #expect(attachment.type == sample.type, "\(sample.name)")
            #expect(attachment.width == 400 && attachment.height == 300, "\(sample.name)")
            #expect(attachment.thumbnails.map(\.size) == ["crop96", "fit320", "fit800"], "\(sample.name)")
            #expect(attachment.thumbnails.first { $0.size == "fit320" }?.height == 240, "\(sample.name)")
            #expect(try Thumbnailer().probe([UInt8](bytes)).frameCount == sample.frames, "\(sample.name)")
            // Animations say so on the attachment; still images say nothing.
            #expect(attachment.animated == (sample.frames > 1 ? true : nil), "\(sample.name)")
            #expect(attachment.frames == (sample.frames > 1 ? sample.frames : nil), "\(sample.name)")
            for size in ["crop96", "fit320"] {
                let thumbnail = try await server.request("GET", "/media/\(attachment.sha256)/thumbnail/\(size)", token: token)
                #expect(thumbnail.status == 200 && thumbnail.header("Content-Type") == "image/jpeg", "\(sample.name) \(size)")
                let info = try Thumbnailer().probe([UInt8](thumbnail.body))
                #expect(info.format == .jpeg && info.width == (size == "crop96" ? 96 : 320), "\(sample.name) \(size)")
            }
        }
        #expect(server.files(under: "thumbs").count == samples.count * 3)
        await server.stop()
    }

    @Test("chat-thumbnail makes the server's thumbnail of a GIF, WebP and HEIC")
    func command() async throws {
        let work = MediaServer.makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: work) }
        for sample in try await Self.samples(in: work) {
            let input = work + "/" + sample.name, output = work + "/" + sample.name + ".jpg"
            let made = try await runBuilt("chat-thumbnail", [input, output, "--size", "fit320"])
            #expect(made.status == 0, "\(sample.name): \(made.stderr)")
            let expected = try Thumbnailer().makeThumbnail(from: [UInt8](try Data(contentsOf: URL(fileURLWithPath: input))),
                                                           spec: .fit320)
            #expect(FileManager.default.contents(atPath: output) == Data(expected.bytes), "\(sample.name)")
        }
    }
}
