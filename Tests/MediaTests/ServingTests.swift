import ChatClient
import ChatProtocol
@_spi(Testing) import ChatServerFixture
@_spi(Testing) import ChatStore
import Foundation
import TestProcesses
import Testing

@Suite("Serving media: access by reference, ranges, caching, sniffed types", .serialized, .stopsServers)
struct ServingTests {
    /// Alice uploads `bytes` and attaches them to a message in her conversation; returns the attachment.
    static func attach(_ bytes: Data, name: String, via connection: ChatConnection) async throws -> ChatProtocol.Attachment {
        let done = try await connection.upload(.bytes([UInt8](bytes)), name: name)
        try connection.send(.send(Send(clientId: UUID().uuidString, text: "file", attachments: [AttachmentReference(uploadId: done.uploadId)])))
        _ = try await connection.receive(timeout: frameWait) { if case .ack(let ack) = $0 { ack } else { nil } }
        return done.attachment
    }

    @Test("a customer cannot fetch another customer's attachment, even knowing its hash: 404 like a missing one")
    func accessRules() async throws {
        let server = try await MediaServer.start()
        let aliceToken = try await server.makeToken("alice", role: .customer)
        let bobToken = try await server.makeToken("bob", role: .customer)
        let agentToken = try await server.makeToken("sam", role: .agent)
        let (alice, _) = try await server.connect("alice", token: aliceToken)
        let image = try await Samples.image("private.jpg", width: 500, height: 400)
        let attachment = try await Self.attach(image, name: "id-card.jpg", via: alice)
        let hash = attachment.sha256

        #expect(try await server.request("GET", "/media/\(hash)", token: aliceToken).status == 200)
        #expect(try await server.request("GET", "/media/\(hash)", token: agentToken).status == 200)
        #expect(try await server.request("GET", "/media/\(hash.uppercased())", token: agentToken).status == 200)
        let bobs = try await server.request("GET", "/media/\(hash)", token: bobToken)
        let missing = try await server.request("GET", "/media/\(String(repeating: "0", count: 64))", token: bobToken)
        #expect(bobs.status == 404)
        #expect(missing.status == 404)
        #expect(bobs.body == missing.body)
        #expect(try await server.request("GET", "/media/\(hash)/thumbnail/fit320", token: bobToken).status == 404)
        #expect(try await server.request("GET", "/media/\(hash)", token: nil).status == 401)
        let wrong = try await server.request("GET", "/media/\(hash)", token: "wrong")
        #expect(wrong.status == 401 && wrong.header("WWW-Authenticate") == "Bearer")
        #expect(String(decoding: wrong.body, as: UTF8.self).contains("\"code\":\"forbidden\""), "\(String(decoding: wrong.body, as: UTF8.self))")
        #expect(try await server.request("POST", "/media?name=a.bin", token: nil, body: Data([1, 2, 3])).status == 401)
        #expect(try await server.request("GET", "/media/not-a-hash", token: agentToken).status == 404)

        // Uploaded but never attached: not even the agent sees it; Bob uploading the same bytes gains nothing.
        let (bob, _) = try await server.connect("bob", token: bobToken)
        let unattached = try await bob.upload(.bytes(randomBytes(1000)), name: "draft.bin")
        #expect(try await server.request("GET", "/media/\(unattached.attachment.sha256)", token: agentToken).status == 404)
        #expect(try await server.request("GET", "/media/\(unattached.attachment.sha256)", token: bobToken).status == 404)
        let copy = try await bob.upload(.bytes([UInt8](image)), name: "copy.jpg")
        #expect(copy.duplicate)
        #expect(try await server.request("GET", "/media/\(hash)", token: bobToken).status == 404)

        // Thumbnails follow the same rule.
        for size in ["crop96", "fit320", "fit800"] {
            let thumbnail = try await server.request("GET", "/media/\(hash)/thumbnail/\(size)", token: aliceToken)
            #expect(thumbnail.status == 200)
            #expect(thumbnail.header("Content-Type") == "image/jpeg")
            #expect(thumbnail.header("Content-Disposition")?.hasPrefix("inline") == true)
            #expect(thumbnail.body.starts(with: [0xFF, 0xD8, 0xFF]))
        }
        #expect(try await server.request("GET", "/media/\(hash)/thumbnail/fit9999", token: aliceToken).status == 404)
        let crop = try await server.request("GET", "/media/\(hash)/thumbnail/crop96", token: agentToken)
        #expect(attachment.thumbnails.first { $0.size == "crop96" }?.width == 96)
        #expect(crop.status == 200)
        await server.stop()
    }

    @Test("tokens that cannot be checked are a 503 (HTTP) or 'retry later' (WebSocket), not a wrong token; fine again after")
    func tokenStoreUnavailable() async throws {
        let server = try await MediaServer.start()
        let aliceToken = try await server.makeToken("alice", role: .customer)
        let (alice, _) = try await server.connect("alice", token: aliceToken)
        let attachment = try await Self.attach(try await Samples.image("a.jpg", width: 64, height: 48), name: "a.jpg", via: alice)
        let path = "/media/\(attachment.sha256)"
        #expect(try await server.request("GET", path, token: aliceToken).status == 200)

        // Another process breaks the token table under the running server.
        let database = try server.sqlite()
        try await database.execute("ALTER TABLE sessions RENAME TO sessions_away")
        let refused = try await server.request("GET", path, token: aliceToken)
        #expect(refused.status == 503)
        #expect(String(decoding: refused.body, as: UTF8.self).contains("store_failed"))
        let socket = ChatConnection(url: server.url, bearer: aliceToken)
        try socket.send(.hello(Hello(user: "alice")))
        let closed = await socket.closed(timeout: frameWait)
        #expect(closed?.code == CloseCode.goingAway, "closed with \(String(describing: closed))")

        try await database.execute("ALTER TABLE sessions_away RENAME TO sessions")
        #expect(try await server.request("GET", path, token: aliceToken).status == 200)
        await server.stop()
    }

    @Test("Range requests and ETag revalidation, from the local directory and from a bucket", arguments: MediaBackend.allCases)
    func rangeAndETag(_ backend: MediaBackend) async throws {
        try await backend.withServer { server, _ in
            let token = try await server.makeToken("alice", role: .customer)
            let (alice, _) = try await server.connect("alice", token: token)
            let bytes = Data(randomBytes(10_000, seed: 9))
            let hash = try await Self.attach(bytes, name: "data.bin", via: alice).sha256
            let path = "/media/\(hash)"

            let first = try await server.request("GET", path, token: token, headers: ["Range": "bytes=0-99"])
            #expect(first.status == 206)
            #expect(first.body == bytes[0..<100])
            #expect(first.header("Content-Range") == "bytes 0-99/10000")
            #expect(first.header("Content-Length") == "100")
            let middle = try await server.request("GET", path, token: token, headers: ["Range": "bytes=5000-"])
            #expect(middle.status == 206)
            #expect(middle.body == bytes[5000...])
            let suffix = try await server.request("GET", path, token: token, headers: ["Range": "bytes=-10"])
            #expect(suffix.body == bytes[9990...])
            #expect(suffix.header("Content-Range") == "bytes 9990-9999/10000")
            let beyond = try await server.request("GET", path, token: token, headers: ["Range": "bytes=20000-"])
            #expect(beyond.status == 416)
            #expect(beyond.header("Content-Range") == "bytes */10000")
            let clamped = try await server.request("GET", path, token: token, headers: ["Range": "bytes=9000-99999"])
            #expect(clamped.body == bytes[9000...])
            let whole = try await server.request("GET", path, token: token, headers: ["Range": "bytes=0-1,5-6"])
            #expect(whole.status == 200)
            #expect(whole.body == bytes)
            let stale = try await server.request("GET", path, token: token, headers: ["Range": "bytes=0-9", "If-Range": "\"other\""])
            #expect(stale.status == 200)

            let revalidated = try await server.request("GET", path, token: token, headers: ["If-None-Match": "\"\(hash)\""])
            #expect(revalidated.status == 304)
            #expect(revalidated.body.isEmpty)
            let changed = try await server.request("GET", path, token: token, headers: ["If-None-Match": "\"something-else\""])
            #expect(changed.status == 200)
        }
    }

    @Test("types are sniffed from the bytes, never the name; mismatches are flagged and active types are downloads")
    func sniffing() async throws {
        let server = try await MediaServer.start()
        let token = try await server.makeToken("alice", role: .customer)
        let (alice, _) = try await server.connect("alice", token: token)
        let executable = try Data(contentsOf: URL(fileURLWithPath: "/bin/ls"))
        let cases: [(name: String, bytes: Data, type: String, mismatch: Bool, inline: Bool)] = [
            ("photo.jpg", try await Samples.image("s.jpg"), "image/jpeg", false, true),
            ("picture.png", try await Samples.image("s.png"), "image/png", false, true),
            ("anim.gif", try await Samples.image("s.gif", width: 32, height: 32), "image/gif", false, true),
            ("contract.pdf", Samples.pdf, "application/pdf", false, false),
            ("song.mp3", Samples.mp3, "audio/mpeg", false, true),
            ("voice.ogg", Samples.ogg, "audio/ogg", false, true),
            ("clip.mp4", Samples.mp4, "video/mp4", false, true),
            ("notes.txt", Samples.text, "text/plain", false, false),
            ("photo.jpg", executable, "application/x-pie-executable", true, false),
            ("cute-cat.png", Samples.html, "text/html", true, false),
            ("logo.svg", Samples.svg, "image/svg+xml", false, false),
            ("no-extension", Samples.pdf + Data("x".utf8), "application/pdf", false, false),
        ]
        for sample in cases {
            let attachment = try await Self.attach(sample.bytes, name: sample.name, via: alice)
            // An ELF's exact flavour (PIE or shared library) depends on headers past the sniffed prefix.
            let executables: Set<String> = ["application/x-pie-executable", "application/x-sharedlib", "application/x-executable"]
            let expected = sample.type == "application/x-pie-executable" && executables.contains(attachment.type) ? attachment.type : sample.type
            #expect(attachment.type == expected, "\(sample.name)")
            #expect(attachment.nameMismatch == sample.mismatch, "\(sample.name)")
            let download = try await server.request("GET", "/media/\(attachment.sha256)", token: token)
            #expect(download.body == sample.bytes)
            #expect(download.header("Content-Type") == expected)
            #expect(download.header("X-Content-Type-Options") == "nosniff")
            let disposition = download.header("Content-Disposition") ?? ""
            #expect(disposition.hasPrefix(sample.inline ? "inline;" : "attachment;"), "\(sample.name): \(disposition)")
            #expect(disposition.contains("filename=\"\(sample.name)\""))
        }
        // Images get dimensions and thumbnails; others none.
        let jpeg = try await Self.attach(try await Samples.image("dims.jpg", width: 1000, height: 500), name: "wide.jpg", via: alice)
        #expect(jpeg.width == 1000 && jpeg.height == 500)
        let sizes = jpeg.thumbnails.map { $0.size }
        #expect(sizes == ["crop96", "fit320", "fit800"])
        let fit320 = jpeg.thumbnails.first { $0.size == "fit320" }
        #expect(fit320?.width == 320)
        #expect(fit320?.height == 160)
        let pdf = try await Self.attach(Samples.pdf + Data("y".utf8), name: "b.pdf", via: alice)
        #expect(pdf.thumbnails.isEmpty)
        #expect(pdf.width == nil)
        await server.stop()
    }

    @Test("a crash between temporary file and rename leaves the store consistent")
    func crashConsistency() async throws {
        let directory = MediaServer.makeDirectory()
        var server = try await MediaServer.start(directory: directory)
        let token = try await server.makeToken("alice", role: .customer)
        await server.stop()
        let bytes = Data(randomBytes(200_000, seed: 11))
        let hash = sha256Hex(bytes)
        let media = server.mediaDirectory

        // State after a crash mid-upload: a temporary file with all the bytes, never renamed, its upload record
        // older than the resume window, and a stray thumbnail temporary file.
        let stale = epochMilliseconds() - 3_600_000
        try bytes.write(to: URL(fileURLWithPath: media + "/tmp/ucrashed.part"))
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: media + "/tmp/thumb-half.tmp"))
        try await server.sqlite().execute("""
            INSERT INTO uploads (id, username, name, declared_size, state, created_at, updated_at)
            VALUES ('ucrashed', 'alice', 'a.bin', 200000, 'receiving', ?, ?)
            """, stale, stale)
        // And a crash just after a rename: a complete blob file without its row.
        let other = Data(randomBytes(50_000, seed: 12))
        let otherHash = sha256Hex(other)
        let otherPath = "\(media)/blobs/sha256/\(otherHash.prefix(2))/\(otherHash.dropFirst(2).prefix(2))"
        try FileManager.default.createDirectory(atPath: otherPath, withIntermediateDirectories: true)
        try other.write(to: URL(fileURLWithPath: "\(otherPath)/\(otherHash)"))

        server = try await MediaServer.start(directory: directory)
        #expect(server.files(under: "tmp").isEmpty)
        #expect(try await server.count("SELECT count(*) FROM uploads") == 0)
        #expect(try await server.count("SELECT count(*) FROM blobs") == 0)
        #expect(!server.files(under: "blobs").contains { $0.hasSuffix(hash) })
        let agentToken = try await server.makeToken("sam", role: .agent)
        #expect(try await server.request("GET", "/media/\(hash)", token: agentToken).status == 404)

        // Uploading both again works; the orphan file, whose bytes nobody vouches for, is replaced by the freshly
        // hashed upload rather than trusted, and still exists once.
        let (alice, _) = try await server.connect("alice", token: token)
        let first = try await alice.upload(.bytes([UInt8](bytes)), name: "a.bin")
        let second = try await alice.upload(.bytes([UInt8](other)), name: "b.bin")
        #expect(first.attachment.sha256 == hash && !first.duplicate)
        #expect(second.attachment.sha256 == otherHash && !second.duplicate)
        #expect(server.files(under: "blobs").count == 2)
        await server.stop()
    }
}
