import ChatClient
import ChatProtocol
import ChatServerFixture
import ChatStore
import Foundation
import MediaStore
import TestProcesses
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("Bad uploads: a clear error at once, nothing left behind", .serialized, .stopsServers)
struct BadUploadTests {
    @Test("binary chunks without a begin get unexpected_binary; the connection stays usable")
    func chunksWithoutBegin() async throws {
        let server = try await MediaServer.start()
        let (client, _) = try await server.connect("alice", token: try await server.makeToken("alice", role: .customer))
        client.sendBinary([1, 2, 3])
        client.sendBinary([4, 5, 6])
        let frames = try await client.framesUntilPong()
        let errors = frames.compactMap { if case .error(let error) = $0 { error } else { nil } }
        #expect(errors.map(\.code) == [.unexpectedBinary])
        #expect(try await server.isClean())
        await server.stop()
    }

    @Test("zero bytes are refused at begin (WebSocket) and at the end (HTTP)")
    func emptyFile() async throws {
        let server = try await MediaServer.start()
        let token = try await server.makeToken("alice", role: .customer)
        let (client, _) = try await server.connect("alice", token: token)
        await #expect(throws: UploadError.self) { _ = try await client.upload(.bytes([]), name: "empty.txt") }
        do { _ = try await client.upload(.bytes([]), name: "empty.txt") } catch { #expect(error.code == .emptyUpload) }
        let posted = try await server.post(name: "empty.txt", bytes: Data(), token: token)
        #expect(posted.status == 400)
        #expect(try JSONDecoder().decode(ErrorFrame.self, from: posted.body).code == .emptyUpload)
        #expect(try await server.isClean())
        #expect(server.files(under: "blobs").isEmpty)
        await server.stop()
    }

    @Test("end before all bytes, more bytes than declared, and a wrong hash each discard the upload")
    func mismatches() async throws {
        let server = try await MediaServer.start()
        let (client, _) = try await server.connect("alice", token: try await server.makeToken("alice", role: .customer))
        let bytes = randomBytes(100_000)

        let short = try await client.beginUpload(UploadBegin(name: "a.bin", size: bytes.count))
        try await client.sendUploadBytes(.bytes(bytes), uploadId: short.uploadId, from: 0, to: 50_000, chunkSize: 10_000)
        do { _ = try await client.endUpload(short.uploadId); Issue.record("incomplete upload accepted") } catch {
            #expect(error.code == .uploadIncomplete)
        }

        let long = try await client.beginUpload(UploadBegin(name: "b.bin", size: 1000))
        client.sendBinary(Array(bytes[0..<1500]))
        let tooMany = try await client.receive(timeout: frameWait) { if case .error(let error) = $0 { error } else { nil } }
        #expect(tooMany.code == .uploadMismatch)
        #expect(tooMany.ref == long.uploadId)

        do {
            _ = try await client.upload(.bytes(bytes), name: "c.bin", sha256: String(repeating: "ab", count: 32))
            Issue.record("wrong hash accepted")
        } catch {
            #expect(error.code == .uploadMismatch)
            #expect(error.description.contains(sha256Hex(bytes)))
        }
        do { _ = try await client.upload(.bytes(bytes), name: "d.bin", sha256: "not-a-hash"); Issue.record("bad hash accepted") } catch {
            #expect(error.code == .invalidFrame)
        }
        #expect(try await server.isClean())
        #expect(server.files(under: "blobs").isEmpty)
        // Still usable: a good upload goes through.
        #expect(try await client.upload(.bytes(bytes), name: "ok.bin").attachment.size == bytes.count)
        await server.stop()
    }

    @Test("oversize uploads: refused at begin when declared, cut off at the limit when not")
    func oversize() async throws {
        let server = try await MediaServer.start { $0.media.maxUploadBytes = 1 << 20 }
        let token = try await server.makeToken("alice", role: .customer)
        let (client, welcome) = try await server.connect("alice", token: token)
        #expect(welcome.limits.maxUploadBytes == 1 << 20)
        do { _ = try await client.beginUpload(UploadBegin(name: "big.bin", size: (1 << 20) + 1)); Issue.record("oversize begin accepted") } catch {
            #expect(error.code == .tooLarge)
        }
        let posted = try await server.post(name: "big.bin", bytes: Data(randomBytes((1 << 20) + 1)), token: token)
        #expect(posted.status == 413)
        // Chunked transfer: no size known in advance, cut off once past the limit.
        let status = try await offPool { try chunkedPost(port: server.port, token: token, total: 3 << 20) }
        #expect(status == 413)
        #expect(try await server.isClean())
        #expect(server.files(under: "blobs").isEmpty)
        await server.stop()
    }

    @Test("uploads in flight per user and bytes per day are limited")
    func quotas() async throws {
        let server = try await MediaServer.start { configuration in
            configuration.media.maxUploadsInFlight = 2
            configuration.media.bytesPerDay = 300_000
        }
        let token = try await server.makeToken("alice", role: .customer)
        let (client, _) = try await server.connect("alice", token: token)
        _ = try await client.beginUpload(UploadBegin(name: "1.bin", size: 10))
        _ = try await client.beginUpload(UploadBegin(name: "2.bin", size: 10))
        do { _ = try await client.beginUpload(UploadBegin(name: "3.bin", size: 10)); Issue.record("third upload accepted") } catch {
            #expect(error.code == .quotaExceeded)
        }
        let other = try await server.connect("alice", token: token).0
        let posted = try await server.post(name: "3.bin", bytes: Data(randomBytes(10)), token: token)
        #expect(posted.status == 429)
        client.close()
        _ = await client.closed(timeout: frameWait)
        _ = other

        let server2 = try await MediaServer.start { $0.media.bytesPerDay = 300_000 }
        let token2 = try await server2.makeToken("bob", role: .customer)
        let (bob, _) = try await server2.connect("bob", token: token2)
        _ = try await bob.upload(.bytes(randomBytes(200_000, seed: 1)), name: "first.bin")
        do { _ = try await bob.upload(.bytes(randomBytes(200_000, seed: 2)), name: "second.bin"); Issue.record("over the daily allowance") } catch {
            #expect(error.code == .quotaExceeded)
        }
        #expect(try await bob.upload(.bytes(randomBytes(50_000, seed: 3)), name: "small.bin").attachment.size == 50_000)
        #expect(try await server2.isClean())
        await server.stop()
        await server2.stop()
    }

    @Test("names with path separators, control characters or 10,000 characters are stored safe")
    func hostileNames() async throws {
        let server = try await MediaServer.start()
        let (client, _) = try await server.connect("alice", token: try await server.makeToken("alice", role: .customer))
        let cases: [(String, String)] = [
            ("../../etc/passwd", "_.._etc_passwd"),
            ("C:\\Users\\me\\report.txt", "C__Users_me_report.txt"),
            ("evil\u{0}\n\r\u{1b}[31mname.txt", "evil[31mname.txt"),
            ("invoice\u{202E}gpj.exe", "invoicegpj.exe"),
            ("...", "file"),
        ]
        for (index, (name, expected)) in cases.enumerated() {
            let done = try await client.upload(.bytes(randomBytes(100, seed: UInt64(index + 1))), name: name)
            #expect(done.attachment.name == expected)
        }
        let long = String(repeating: "a", count: 10_000) + ".txt"
        let done = try await client.upload(.bytes(Array(Samples.text)), name: long)
        #expect(done.attachment.name.utf8.count == 255)
        #expect(done.attachment.name.hasSuffix(".txt"))
        #expect(server.files(under: "blobs").allSatisfy { !$0.contains("..") })
        await server.stop()
    }

    @Test("a disk that fills up mid-write: store_failed saying so, nothing left behind, the connection goes on")
    func diskFull() async throws {
        let server = try await MediaServer.start { $0.mediaFileWriter = FullDiskWriter(limit: 2 << 20) }
        let token = try await server.makeToken("alice", role: .customer)
        let (client, _) = try await server.connect("alice", token: token)
        do {
            _ = try await client.upload(.bytes(randomBytes(5 << 20)), name: "big.bin")
            Issue.record("upload succeeded on a full disk")
        } catch {
            #expect(error.code == .storeFailed)
            #expect(error.description.contains("disk is full"))
        }
        #expect(try await server.isClean())
        #expect(server.files(under: "blobs").isEmpty)
        let posted = try await server.post(name: "big.bin", bytes: Data(randomBytes(3 << 20)), token: token)
        #expect(posted.status == 507)
        #expect(try await server.isClean())
        try client.send(.send(Send(clientId: "still-here", text: "hello")))
        #expect(try await client.receive(timeout: frameWait) { if case .ack(let ack) = $0 { ack } else { nil } }.seq == 1)
        await server.stop()
    }

    @Test("a send may only attach the sender's own finished uploads")
    func attachOnlyOwnUploads() async throws {
        let server = try await MediaServer.start()
        let (alice, _) = try await server.connect("alice", token: try await server.makeToken("alice", role: .customer))
        let (bob, _) = try await server.connect("bob", token: try await server.makeToken("bob", role: .customer))
        let done = try await alice.upload(.bytes(Array(Samples.pdf)), name: "contract.pdf")
        for reference in [AttachmentReference(sha256: done.attachment.sha256), AttachmentReference(uploadId: done.uploadId),
                          AttachmentReference(sha256: String(repeating: "0", count: 64))] {
            try bob.send(.send(Send(clientId: UUID().uuidString, text: "mine now", attachments: [reference])))
            let error = try await bob.receive(timeout: frameWait) { frame -> ErrorFrame? in if case .error(let error) = frame { error } else { nil } }
            #expect(error.code == .unknownAttachment)
        }
        try bob.send(.send(Send(clientId: "x", text: "", attachments: [AttachmentReference()])))
        let invalid = try await bob.receive(timeout: frameWait) { frame -> ErrorFrame? in if case .error(let error) = frame { error } else { nil } }
        #expect(invalid.code == .invalidFrame)
        #expect(try await server.count("SELECT count(*) FROM messages") == 0)
        await server.stop()
    }
}

/// `POST /media` with `Transfer-Encoding: chunked` on a plain socket (no size announced). Returns the status code.
func chunkedPost(port: Int, token: String, total: Int) throws -> Int {
    let socket = try LoopbackSocket(port: port)
    let head = "POST /media?name=stream.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\nTransfer-Encoding: chunked\r\n\r\n"
    socket.sendAll(Array(head.utf8))
    let chunk = randomBytes(64 << 10)
    var sent = 0
    while sent < total {
        // The server may answer and stop reading before everything is sent.
        guard socket.sendAll(Array(String(chunk.count, radix: 16).utf8) + [13, 10] + chunk + [13, 10]) else { break }
        sent += chunk.count
    }
    socket.sendAll(Array("0\r\n\r\n".utf8))
    return try socket.readStatus()
}
