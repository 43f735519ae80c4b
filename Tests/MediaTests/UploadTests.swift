import ChatClient
import ChatProtocol
import ChatServerFixture
import ChatStore
import Foundation
import TestProcesses
import Testing

@Suite("Media uploads over WebSocket and HTTP", .serialized, .stopsServers)
struct UploadTests {
    @Test("the client's upload reader and window: chunks from an offset, a file that shrank is an error, the window bound")
    func readerAndWindow() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("reader-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let bytes = randomBytes(10_000)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let reader = try UploadReader(.file(path), from: 1000)
        #expect(try reader.next(4000) == Array(bytes[1000..<5000]))
        #expect(reader.offset == 5000)
        // The file is cut short behind the reader's back: the next chunk is refused, not padded or repeated.
        try FileManager.default.removeItem(atPath: path)
        try Data(bytes[0..<6000]).write(to: URL(fileURLWithPath: path))
        let shrunk = try UploadReader(.file(path), from: 5000)
        #expect(throws: UploadError.self) { try shrunk.next(4000) }
        #expect(throws: UploadError.self) { try UploadReader(.bytes([1, 2, 3]), from: 2).next(2) }
        #expect(throws: UploadError.self) { try UploadReader(.file(path + ".missing"), from: 0) }
        let window = UploadWindow(bytes: 100)
        #expect(window.allows(sent: 199, acknowledged: 100))
        #expect(!window.allows(sent: 200, acknowledged: 100))
    }

    @Test("a small file goes up over the WebSocket, rides on a message and comes back byte-exact")
    func smallRoundTrip() async throws {
        let server = try await MediaServer.start()
        let customerToken = try await server.makeToken("alice", role: .customer)
        let agentToken = try await server.makeToken("sam", role: .agent)
        let (customer, welcome) = try await server.connect("alice", token: customerToken, lastSeq: 0)
        #expect(welcome.limits.maxUploadBytes == 100 << 20)
        #expect(welcome.limits.maxUploadsInFlight == 4)
        let (agent, _) = try await server.connect("sam", token: agentToken)

        let bytes = Samples.text
        let done = try await customer.upload(.bytes([UInt8](bytes)), name: "note.txt", sha256: sha256Hex(bytes))
        #expect(done.attachment.sha256 == sha256Hex(bytes))
        #expect(done.attachment.size == bytes.count)
        #expect(done.attachment.type == "text/plain")
        #expect(done.attachment.name == "note.txt")
        #expect(!done.attachment.nameMismatch)
        #expect(!done.duplicate)
        #expect(server.files(under: "blobs") == ["sha256/\(done.attachment.sha256.prefix(2))/\(done.attachment.sha256.dropFirst(2).prefix(2))/\(done.attachment.sha256)"])

        try customer.send(.send(Send(clientId: "m1", text: "", attachments: [AttachmentReference(uploadId: done.uploadId)])))
        let ack = try await customer.receive(timeout: frameWait) { if case .ack(let ack) = $0 { ack } else { nil } }
        #expect(ack.seq == 1)
        let message = try await agent.receive(timeout: frameWait) { if case .message(let message) = $0 { message } else { nil } }
        #expect(message.attachments == [done.attachment])

        let download = try await server.request("GET", "/media/\(done.attachment.sha256)", token: agentToken)
        #expect(download.status == 200)
        #expect(download.body == bytes)
        #expect(download.header("Content-Type") == "text/plain")
        #expect(download.header("Content-Length") == "\(bytes.count)")
        #expect(download.header("ETag") == "\"\(done.attachment.sha256)\"")
        #expect(download.header("Cache-Control") == "private, immutable")
        #expect(download.header("X-Content-Type-Options") == "nosniff")
        #expect(download.header("Content-Disposition")?.hasPrefix("attachment; filename=\"note.txt\"") == true)
        #expect(try await server.request("GET", "/media/\(done.attachment.sha256)", token: customerToken).body == bytes)
        await server.stop()
    }

    @Test("a 50 MiB file over the WebSocket and over HTTP is stored once and downloads byte-exact")
    func largeFile() async throws {
        let server = try await MediaServer.start()
        let aliceToken = try await server.makeToken("alice", role: .customer)
        let bobToken = try await server.makeToken("bob", role: .customer)
        let agentToken = try await server.makeToken("sam", role: .agent)
        let bytes = randomBytes(50 << 20)
        let hash = sha256Hex(bytes)
        let (alice, _) = try await server.connect("alice", token: aliceToken, lastSeq: 0)
        let done = try await alice.upload(.bytes(bytes), name: "big.bin")
        #expect(done.attachment.sha256 == hash)
        #expect(done.attachment.size == 50 << 20)
        #expect(!done.duplicate)

        // The same bytes from another user over HTTP: deduplicated.
        let posted = try await server.post(name: "copy.bin", bytes: Data(bytes), token: bobToken)
        #expect(posted.status == 201)
        let bobDone = try JSONDecoder().decode(UploadDone.self, from: posted.body)
        #expect(bobDone.attachment.sha256 == hash)
        #expect(bobDone.duplicate)
        #expect(server.files(under: "blobs").count == 1)
        #expect(try await server.count("SELECT count(*) FROM uploads WHERE state = 'done' AND blob_hash = '\(hash)'") == 2)
        #expect(try await server.count("SELECT count(*) FROM blobs") == 1)

        try alice.send(.send(Send(clientId: "big", text: "the log", attachments: [AttachmentReference(sha256: hash)])))
        _ = try await alice.receive(timeout: frameWait) { if case .ack(let ack) = $0 { ack } else { nil } }
        let download = try await server.request("GET", "/media/\(hash)", token: agentToken)
        #expect(download.status == 200)
        #expect(download.body.count == bytes.count)
        #expect(sha256Hex(download.body) == hash)
        await server.stop()
    }

    @Test("HTTP: Expect: 100-continue (curl, bodies over 1 MiB) is answered at once, so the body is not held back")
    func expectContinue() async throws {
        let server = try await MediaServer.start()
        let token = try await server.makeToken("alice", role: .customer)
        let body = randomBytes(2 << 20, seed: 9)
        let (interim, status) = try await offPool { [port = server.port] in
            let socket = try LoopbackSocket(port: port)
            let head = "POST /media?name=big.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n"
                + "Content-Length: \(body.count)\r\nExpect: 100-continue\r\n\r\n"
            socket.sendAll(Array(head.utf8))
            // No body byte goes out before the go-ahead (curl waits up to a second for it, then sends anyway).
            let interim = try socket.readHead(seconds: 5)
            socket.sendAll(body)
            return (interim, try socket.readStatus())
        }
        #expect(interim.hasPrefix("HTTP/1.1 100"), "\(interim)")
        #expect(status == 201)
        #expect(try await server.count("SELECT count(*) FROM blobs") == 1)
        await server.stop()
    }

    @Test("two simultaneous uploads of the same image end in one blob, one set of thumbnails and two references")
    func simultaneousIdentical() async throws {
        let server = try await MediaServer.start()
        let image = try await Samples.image("same.jpg", width: 1200, height: 900)
        let tokens = [try await server.makeToken("alice", role: .customer), try await server.makeToken("bob", role: .customer)]
        let connections = [try await server.connect("alice", token: tokens[0]).0, try await server.connect("bob", token: tokens[1]).0]
        let results = try await withThrowingTaskGroup(of: UploadDone.self) { group in
            for connection in connections {
                group.addTask { try await connection.upload(.bytes([UInt8](image)), name: "same.jpg") }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.count == 2)
        #expect(Set(results.map(\.attachment.sha256)) == [sha256Hex(image)])
        #expect(results.filter(\.duplicate).count == 1)
        #expect(results[0].attachment.thumbnails.map(\.size) == ["crop96", "fit320", "fit800"])
        #expect(results[0].attachment.thumbnails == results[1].attachment.thumbnails)
        #expect(server.files(under: "blobs").count == 1)
        #expect(server.files(under: "thumbs").count == 3)
        #expect(try await server.count("SELECT count(*) FROM uploads WHERE state = 'done'") == 2)
        #expect(try await server.isClean())
        await server.stop()
    }

    @Test("an upload interrupted by a dropped connection resumes from the acknowledged offset")
    func resumeAfterDrop() async throws {
        let server = try await MediaServer.start()
        let token = try await server.makeToken("alice", role: .customer)
        let bytes = randomBytes(6 << 20, seed: 7)
        let (first, _) = try await server.connect("alice", token: token)
        let ready = try await first.beginUpload(UploadBegin(name: "video.bin", size: bytes.count, sha256: sha256Hex(bytes)))
        #expect(ready.offset == 0)
        #expect(ready.resumeWindowMs == 600_000)
        // Send about half (not a whole number of progress intervals), wait until the server acknowledges at least
        // 2 MiB, then drop the connection.
        let half = (3 << 20) + 100_000
        try await first.sendUploadBytes(.bytes(bytes), uploadId: ready.uploadId, from: 0, to: half, chunkSize: ready.chunkSize, window: 8 << 20)
        let acknowledged = try await first.receive(timeout: frameWait) { frame -> Int? in
            if case .uploadProgress(let progress) = frame, progress.offset >= 2 << 20 { return progress.offset }
            return nil
        }
        first.close()
        _ = await first.closed(timeout: frameWait)
        #expect(server.files(under: "tmp").count == 1)

        let (second, _) = try await server.connect("alice", token: token)
        try second.send(.uploadResume(UploadResume(uploadId: ready.uploadId, requestId: "again")))
        let resumed = try await second.receive(timeout: frameWait) { if case .uploadReady(let ready) = $0 { ready } else { nil } }
        let offset = resumed.offset
        #expect(offset >= acknowledged)
        #expect(offset <= half)
        try await second.sendUploadBytes(.bytes(bytes), uploadId: ready.uploadId, from: offset, to: bytes.count,
                                         chunkSize: resumed.chunkSize, window: 8 << 20)
        // The resumed upload is acknowledged at its declared end, as a new one is: a client that waits for that
        // before uploadEnd is not left waiting.
        let end = try await second.receive(timeout: frameWait) { if case .uploadProgress(let progress) = $0, progress.offset == bytes.count { progress.offset } else { nil } }
        #expect(end == bytes.count)
        let done = try await second.endUpload(ready.uploadId)
        #expect(done.attachment.sha256 == sha256Hex(bytes))
        #expect(done.attachment.size == bytes.count)
        #expect(try await server.isClean())

        // Another user cannot resume it, even knowing the id.
        let bobToken = try await server.makeToken("bob", role: .customer)
        let (bob, _) = try await server.connect("bob", token: bobToken)
        let ready2 = try await second.beginUpload(UploadBegin(name: "x.bin", size: 10))
        do {
            _ = try await bob.resumeUpload(.bytes(randomBytes(10)), uploadId: ready2.uploadId)
            Issue.record("another user resumed an upload")
        } catch {
            #expect(error.code == .unknownUpload)
        }
        await server.stop()
    }

    @Test("an interrupted upload not resumed within the window is removed, file and record")
    func resumeWindowExpires() async throws {
        let server = try await MediaServer.start { configuration in
            configuration.media.resumeWindow = .seconds(1)
            configuration.mediaSweepInterval = .milliseconds(200)
        }
        let token = try await server.makeToken("alice", role: .customer)
        let (first, _) = try await server.connect("alice", token: token)
        let ready = try await first.beginUpload(UploadBegin(name: "a.bin", size: 1 << 20))
        try await first.sendUploadBytes(.bytes(randomBytes(1 << 20)), uploadId: ready.uploadId, from: 0, to: 512 << 10, chunkSize: 64 << 10)
        _ = try await first.framesUntilPong()
        first.close()
        _ = await first.closed(timeout: frameWait)
        #expect(server.files(under: "tmp").count == 1)
        #expect(try await server.isClean())
        let (second, _) = try await server.connect("alice", token: token)
        do {
            _ = try await second.resumeUpload(.bytes(randomBytes(1 << 20)), uploadId: ready.uploadId)
            Issue.record("an expired upload was resumed")
        } catch {
            #expect(error.code == .unknownUpload)
        }
        await server.stop()
    }

    @Test("an upload interrupted by a server restart resumes after it")
    func resumeAfterRestart() async throws {
        let directory = MediaServer.makeDirectory()
        var server = try await MediaServer.start(directory: directory)
        let token = try await server.makeToken("alice", role: .customer)
        let bytes = randomBytes(3 << 20, seed: 3)
        let (first, _) = try await server.connect("alice", token: token)
        let ready = try await first.beginUpload(UploadBegin(name: "a.bin", size: bytes.count))
        try await first.sendUploadBytes(.bytes(bytes), uploadId: ready.uploadId, from: 0, to: 1 << 20, chunkSize: 256 << 10)
        _ = try await first.framesUntilPong()
        await server.stop()

        server = try await MediaServer.start(directory: directory)
        let (second, _) = try await server.connect("alice", token: token)
        let (offset, done) = try await second.resumeUpload(.bytes(bytes), uploadId: ready.uploadId)
        #expect(offset == 1 << 20)
        #expect(done.attachment.sha256 == sha256Hex(bytes))
        await server.stop()
    }

    @Test("messages with attachments come back in the backlog and in history")
    func backlogAndHistory() async throws {
        let server = try await MediaServer.start()
        let token = try await server.makeToken("alice", role: .customer)
        let agentToken = try await server.makeToken("sam", role: .agent)
        let (alice, _) = try await server.connect("alice", token: token, lastSeq: 0)
        let image = try await Samples.image("history.png", width: 300, height: 200)
        let done = try await alice.upload(.bytes([UInt8](image)), name: "screen.png")
        #expect(done.attachment.type == "image/png")
        #expect(done.attachment.width == 300 && done.attachment.height == 200)
        try alice.send(.send(Send(clientId: "with-file", text: "see screenshot", attachments: [AttachmentReference(uploadId: done.uploadId)])))
        _ = try await alice.receive(timeout: frameWait) { if case .ack(let ack) = $0 { ack } else { nil } }
        alice.close()

        let (agent, _) = try await server.connect("sam", token: agentToken, lastSeqs: ["alice": 0])
        let replayed = try await agent.receive(timeout: frameWait) { if case .message(let message) = $0 { message } else { nil } }
        #expect(replayed.attachments == [done.attachment])
        try agent.send(.history(HistoryRequest(conversation: "alice", requestId: "h")))
        let page = try await agent.receive(timeout: frameWait) { if case .history(let page) = $0 { page } else { nil } }
        #expect(page.messages.first?.attachments == [done.attachment])
        // Resending the same client id returns the stored message, attachments included.
        let (again, _) = try await server.connect("alice", token: token)
        try again.send(.send(Send(clientId: "with-file", text: "see screenshot", attachments: [AttachmentReference(uploadId: done.uploadId)])))
        let duplicate = try await again.receive(timeout: frameWait) { if case .ack(let ack) = $0 { ack } else { nil } }
        #expect(duplicate.duplicate)
        await server.stop()
    }
}

extension ChatConnection {
    /// Every frame before the pong of a fresh ping: proves the server has handled what was sent before it.
    func framesUntilPong() async throws -> [ServerFrame] {
        let id = UUID().uuidString
        try send(.ping(requestId: id))
        var frames: [ServerFrame] = []
        while true {
            let incoming = try await receive(timeout: .seconds(10))
            guard let frame = incoming.frame else { continue }
            if case .pong(let requestId) = frame, requestId == id { return frames }
            frames.append(frame)
        }
    }
}
