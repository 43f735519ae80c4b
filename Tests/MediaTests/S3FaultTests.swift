import ChatClient
import ChatProtocol
import ChatServer
@_spi(Testing) import ChatServerFixture
@_spi(Testing) import ChatStore
import Foundation
import MediaMaintenance
import MediaObjectStore
import MediaStore
import ObjectStorage
import TestProcesses
import Testing

/// What the bucket leaves behind when it fails, and the server's answers while it does: leftover multipart uploads
/// and `media gc`, a store answering 5xx (a `FakeS3Server` in front of moto turns faulty and healthy again), and the
/// built `chat-server` run as a process on a bucket.
@Suite("Media on S3: leftovers and faults", .serialized, .timeLimit(.minutes(3)), .stopsServers)
struct S3FaultTests {
    static let internalError = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InternalError</Code>"
        + "<Message>We encountered an internal error. Please try again.</Message><RequestId>R5</RequestId></Error>"

    @Test("gc aborts the multipart uploads a failed abort or a killed server left, and spares one an upload in progress holds")
    func gcAbortsLeftMultipartUploads() async throws {
        try await MediaBackend.s3.withServer { server, bucket in
            guard let bucket else { return }
            let left = sha256Hex(Data("left".utf8)), held = sha256Hex(Data("held".utf8))
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("part-\(UUID().uuidString)").path
            try Data(randomBytes(1_000, seed: 4)).write(to: URL(fileURLWithPath: file))
            defer { try? FileManager.default.removeItem(atPath: file) }
            // Started and given a part, never completed nor aborted: what a put leaves when the store fails under it
            // and then refuses the abort too, or when the server is killed mid-put.
            try await bucket.withClient { client in
                for hash in [left, held] {
                    let key = S3MediaTests.blobKey(hash)
                    let id = try await client.createMultipartUpload(key, contentType: nil)
                    _ = try await client.uploadPart(key, uploadID: id, number: 1, path: file, range: 0..<1_000)
                }
            }
            // An upload in progress holds `held`: that multipart upload may be its put, still running.
            let now = epochMilliseconds()
            try await server.sqlite().execute("""
                INSERT INTO uploads (id, username, name, state, created_at, updated_at, storing_hash)
                VALUES ('u-held', 'alice', 'held.bin', 'receiving', ?, ?, ?)
                """, now, now, held)
            func gc(_ arguments: [String]) async throws -> AdminResult {
                let result = try await runBuilt("chat-admin", ["media", "gc"] + arguments + ["--data-dir", server.directory, "--media-store", bucket.url],
                                                environment: testCredentialsEnvironment)
                if result.status != 0 { Issue.record("gc exited \(result.status): \(result.stderr)") }
                return result
            }
            func pending() async throws -> [String] {
                try await bucket.withClient { try await $0.pendingMultipartUploads() }.map(\.key).sorted()
            }

            // moto dates every multipart upload in 2010, so both are past the grace period: only the hold spares one.
            // (The age rule itself: `unfinishedWritesByAge`.)
            let dryRun = try JSONDecoder().decode(GCFigures.self, from: Data(try await gc(["--dry-run", "--json"]).stdout.utf8))
            #expect(dryRun.multipartUploadsAborted == [S3MediaTests.blobKey(left)])
            #expect(try await pending().count == 2)
            let text = try await gc([])
            #expect(text.stdout.contains("unfinished multipart uploads aborted: 1"), "\(text.stdout)")
            #expect(text.stdout.contains(S3MediaTests.blobKey(left)))
            #expect(try await pending() == [S3MediaTests.blobKey(held)])

            // The upload is gone (its server was killed, and its record expired): its parts go too.
            try await server.sqlite().execute("DELETE FROM uploads WHERE id = 'u-held'")
            let json = try JSONDecoder().decode(GCFigures.self, from: Data(try await gc(["--json"]).stdout.utf8))
            #expect(json.multipartUploadsAborted == [S3MediaTests.blobKey(held)])
            #expect(try await pending().isEmpty)
        }
    }

    @Test("unfinished writes are the multipart uploads started before the cutoff: a young one is left alone")
    func unfinishedWritesByAge() async throws {
        let old = sha256Hex(Data("old".utf8)), young = sha256Hex(Data("young".utf8))
        func upload(_ hash: String, _ id: String, _ initiated: String) -> String {
            "<Upload><Key>\(S3MediaTests.blobKey(hash))</Key><UploadId>\(id)</UploadId><Initiated>\(initiated)</Initiated></Upload>"
        }
        func listing(_ uploads: String) -> String {
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListMultipartUploadsResult><Bucket>media</Bucket>"
                + "<IsTruncated>false</IsTruncated>\(uploads)</ListMultipartUploadsResult>"
        }
        let store = try FakeS3Server([
            .answer(status: 200, body: listing(upload(old, "U-OLD", "2026-01-01T00:00:00.000Z") + upload(young, "U-YOUNG", Date().ISO8601Format()))),
            .answer(status: 200, body: listing("")),  // thumbs/
        ])
        defer { store.stop() }
        let client = S3Client(configuration: S3Configuration(
            location: S3Location(bucket: TestBucket.bucket, prefix: TestBucket.prefix,
                                 endpoint: S3Location.Endpoint(secure: false, host: "127.0.0.1", port: store.port)),
            credentials: testCredentials, retry: RetryPolicy(attempts: 1)))
        let writes: [UnfinishedWrite]
        do {
            writes = try await S3BlobStorage(client: client).unfinishedWrites(startedBefore: epochMilliseconds() - 15 * 60_000)
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
        #expect(writes.map(\.id) == ["U-OLD"])
        let oldKey = try BlobKey(blob: old)
        #expect(writes.first?.key == oldKey)
        #expect(store.requests.count == 2)
        #expect(store.requests.allSatisfy { $0.hasPrefix("GET /media?") && $0.contains("uploads") }, "\(store.requests)")
    }

    @Test("a store answering 5xx: upload and download answer 503 with the JSON error body, the upload is not kept; once the store answers again both work, without a restart")
    func storeAnswering5xx() async throws {
        let bucket = try await TestBucket.start()
        defer { bucket.stop() }
        let proxy = try FakeS3Server([.forward(port: bucket.port)])
        defer { proxy.stop() }
        let server = try await MediaServer.start { $0.objectStore = bucket.configuration(through: proxy.port) }
        let token = try await server.makeToken("alice", role: .customer)
        let (alice, _) = try await server.connect("alice", token: token)
        let before = Data(randomBytes(5_000, seed: 31))
        let stored = try await ServingTests.attach(before, name: "before.bin", via: alice)

        proxy.play([.answer(status: 500, body: Self.internalError)])
        let requestsBefore = proxy.requests.count
        let refused = try await server.post(name: "during.bin", bytes: Data(randomBytes(4_000, seed: 32)), token: token)
        #expect(refused.status == 503)
        #expect(refused.header("Content-Type") == "application/json")
        let error = try JSONDecoder().decode(ErrorFrame.self, from: refused.body)
        #expect(error.code == .storeFailed)
        #expect(error.message.contains("send it again") && !error.message.contains("resume"), "\(error.message)")
        #expect(!error.message.contains("127.0.0.1") && !error.message.contains("InternalError"), "the store's details stay in the log")
        #expect(proxy.requests.count - requestsBefore >= 3, "retried: \(proxy.requests.count - requestsBefore) requests")
        // Discarded: HTTP has no resume, and a kept spool file would only wait for the sweep.
        #expect(try await server.isClean())
        let download = try await server.request("GET", "/media/\(stored.sha256)", token: token)
        #expect(download.status == 503)
        #expect(download.header("Content-Type") == "application/json")
        #expect(try JSONDecoder().decode(ErrorFrame.self, from: download.body).code == .storeFailed)

        proxy.play([.forward(port: bucket.port)])
        let again = try S3MediaTests.uploaded(try await server.post(name: "after.bin", bytes: Data(randomBytes(4_000, seed: 32)), token: token))
        #expect(!again.duplicate)
        #expect(try await bucket.keys().contains(S3MediaTests.blobKey(again.attachment.sha256)))
        let back = try await server.request("GET", "/media/\(stored.sha256)", token: token)
        #expect(back.status == 200)
        #expect(back.body == before)
        alice.close()
        await server.stop()
    }

    @Test("the built chat-server with --media-store and AWS_* credentials: an upload lands in the bucket, its thumbnail comes back",
          .timeLimit(.minutes(3)))
    func serverProcess() async throws {
        let bucket = try await TestBucket.start()
        defer { bucket.stop() }
        let directory = MediaServer.makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let binary = try builtExecutable("chat-server")
        let process = try await offPool {
            try ServerProcess(binary: binary, directory: directory, arguments: ["--media-store", bucket.url],
                              environment: testCredentialsEnvironment)
        }
        defer { process.kill() }
        let created = try await runBuilt("chat-admin", ["tokens", "create", "alice", "--role", "customer", "--json", "--data-dir", directory])
        #expect(created.status == 0, "\(created.stderr)")
        let fields = try JSONSerialization.jsonObject(with: Data(created.stdout.utf8)) as? [String: Any]
        let token = try #require(fields?["token"] as? String)
        let base = "http://127.0.0.1:\(process.port)"

        let image = try Data(contentsOf: URL(fileURLWithPath: S3MediaTests.corpus + "/jpeg/testimgint.jpg"))
        let done = try S3MediaTests.uploaded(try await MediaServer.request("POST", base + "/media?name=photo.jpg", token: token,
                                                                           headers: ["Content-Type": "application/octet-stream"], body: image))
        let hash = done.attachment.sha256
        let keys = try await bucket.keys()
        #expect(keys.contains(S3MediaTests.blobKey(hash)))
        #expect(keys.contains { $0.hasPrefix("\(TestBucket.prefix)/thumbs/\(hash.prefix(2))/") })
        // Attached to a message, the upload is the uploader's to fetch.
        let alice = ChatConnection(url: "ws://127.0.0.1:\(process.port)/ws", bearer: token, maxFrameSize: 4 << 20)
        _ = try await alice.hello(Hello(user: "alice", lastSeq: 0), timeout: frameWait)
        try alice.send(.send(Send(clientId: "m1", text: "photo", attachments: [AttachmentReference(uploadId: done.uploadId)])))
        _ = try await alice.receive(timeout: frameWait) { if case .ack(let ack) = $0 { ack } else { nil } }
        let size = try #require(done.attachment.thumbnails.first?.size)
        let thumbnail = try await MediaServer.request("GET", base + "/media/\(hash)/thumbnail/\(size)", token: token)
        #expect(thumbnail.status == 200)
        #expect(thumbnail.header("Content-Type") == "image/jpeg")
        #expect(thumbnail.body.starts(with: [0xFF, 0xD8]))
        let whole = try await MediaServer.request("GET", base + "/media/\(hash)", token: token)
        #expect(whole.body == image)
        alice.close()
    }
}

extension S3FaultTests {
    @Test("migrate: a blob whose read fails is reported and not copied, the others are")
    func migrateUnreadableBlob() async throws {
        let directory = MediaServer.makeDirectory()
        let local = try await MediaServer.start(directory: directory)
        let token = try await local.makeToken("alice", role: .customer)
        let (alice, _) = try await local.connect("alice", token: token)
        var hashes: [String] = []
        for seed in 41...42 as ClosedRange<UInt64> {
            hashes.append(try await ServingTests.attach(Data(randomBytes(6_000, seed: seed)), name: "f\(seed).bin", via: alice).sha256)
        }
        alice.close()
        let layout = MediaLayout(directory: local.mediaDirectory)
        await local.stop()

        let bucket = try await TestBucket.start()
        defer { bucket.stop() }
        let unreadable = hashes[0]
        let report = try await bucket.withClient { client in
            try await MediaMigration(source: UnreadableBlob(base: LocalBlobStorage(layout: layout), hash: unreadable),
                                     destination: S3BlobStorage(client: client), scratchDirectory: layout.temporaryDirectory).run()
        }
        #expect(report.unreadable.count == 1 && report.unreadable.first?.hasPrefix(unreadable) == true, "\(report.unreadable)")
        #expect(report.problems == 1 && report.corrupted.isEmpty)
        #expect(report.blobsCopied == 1)
        let keys = try await bucket.keys()
        #expect(!keys.contains(S3MediaTests.blobKey(unreadable)) && keys.contains(S3MediaTests.blobKey(hashes[1])))
        #expect((try? FileManager.default.contentsOfDirectory(atPath: layout.temporaryDirectory))?.isEmpty ?? true, "no copy is left")
    }
}

/// The local directory, except that reading one blob fails part way, as a failing disk does.
struct UnreadableBlob: BlobStorage {
    let base: LocalBlobStorage
    let hash: String

    func read<T: Sendable>(_ key: BlobKey, range: Range<Int>?, _ body: (BlobByteStream) async throws -> T) async throws -> T {
        guard key.kind == .blob, key.hash == hash else { return try await base.read(key, range: range, body) }
        let path = base.layout.blobPath(hash)
        return try await body(BlobByteStream(single: { throw BlobStorageError.io(operation: "read", path: path, errno: EIO) }))
    }

    func put(_ key: BlobKey, temporaryFile path: String) async throws(BlobStorageError) { try await base.put(key, temporaryFile: path) }
    func put(_ key: BlobKey, bytes: [UInt8]) async throws(BlobStorageError) { try await base.put(key, bytes: bytes) }
    func size(of key: BlobKey) async throws(BlobStorageError) -> Int? { try await base.size(of: key) }
    func open(_ key: BlobKey, range: Range<Int>?) async throws(BlobStorageError) -> OpenedObject? { try await base.open(key, range: range) }
    func list(_ area: BlobArea, prefix: String) -> BlobListing { base.list(area, prefix: prefix) }
    func remove(_ object: StoredObject) async throws(BlobStorageError) { try await base.remove(object) }
    func quarantine(_ object: StoredObject) async throws(BlobStorageError) { try await base.quarantine(object) }
    func restore(_ object: StoredObject, as key: BlobKey) async throws(BlobStorageError) { try await base.restore(object, as: key) }
    func beginRemoval(_ disposal: BlobDisposal) -> any BlobRemovalBatch { base.beginRemoval(disposal) }
    func sha256(of objects: [StoredObject], progress: @escaping @Sendable (Int64) -> Void) async -> [Result<String?, BlobStorageError>] {
        await BlobDigests.streaming(objects, in: self, progress: progress)
    }
}

/// The JSON of `chat-admin media gc --json`, as far as these tests read it.
struct GCFigures: Decodable {
    var multipartUploadsAborted: [String]
}
