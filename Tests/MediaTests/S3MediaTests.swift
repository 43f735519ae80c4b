import ChatClient
import ChatProtocol
import ChatServer
@_spi(Testing) import ChatServerFixture
@_spi(Testing) import ChatStore
import ChatStorePostgres
import Foundation
import Logging
import MediaStore
import ObjectStorage
import TestProcesses
import Testing

/// Media in an S3-compatible bucket (moto, started by each test on its own loopback port and always stopped), end to
/// end through real servers, real HTTP and WebSocket clients and the built chat-admin.
@Suite("Media on S3-compatible storage", .serialized, .timeLimit(.minutes(3)), .stopsServers)
struct S3MediaTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../shared/corpus").path

    static func blobKey(_ hash: String) -> String {
        "\(TestBucket.prefix)/blobs/sha256/\(hash.prefix(2))/\(hash.dropFirst(2).prefix(2))/\(hash)"
    }

    static func uploaded(_ result: MediaServer.HTTPResult) throws -> UploadDone {
        guard result.status == 201 else { throw TestFailure("upload answered \(result.status): \(String(decoding: result.body, as: UTF8.self))") }
        return try JSONDecoder().decode(UploadDone.self, from: result.body)
    }

    @Test("an image: stored once (a second upload puts nothing), thumbnails in the bucket, served byte-exact", .timeLimit(.minutes(3)))
    func imageDedupAndThumbnails() async throws {
        try await MediaBackend.s3.withServer { server, bucket in
            guard let bucket else { return }
            let token = try await server.makeToken("alice", role: .customer)
            let (alice, _) = try await server.connect("alice", token: token)
            let image = try Data(contentsOf: URL(fileURLWithPath: Self.corpus + "/jpeg/testimgint.jpg"))
            let first = try await ServingTests.attach(image, name: "photo.jpg", via: alice)
            let second = try await alice.upload(.bytes([UInt8](image)), name: "again.jpg")
            #expect(second.duplicate)
            let hash = first.sha256
            // One PUT of the blob: the second upload found it present and put nothing.
            #expect(bucket.requests(containing: "\"PUT /\(TestBucket.bucket)/\(Self.blobKey(hash)) ") == 1)
            let keys = try await bucket.keys()
            #expect(keys.filter { $0.contains("/blobs/") } == [Self.blobKey(hash)])
            #expect(!keys.filter { $0.contains("/thumbs/\(hash.prefix(2))/") }.isEmpty)

            let blobHeads = bucket.requests(containing: "\"HEAD /\(TestBucket.bucket)/\(Self.blobKey(hash)) ")
            let whole = try await server.request("GET", "/media/\(hash)", token: token)
            #expect(whole.status == 200)
            #expect(whole.body == image)
            #expect(bucket.requests(containing: "\"HEAD /\(TestBucket.bucket)/\(Self.blobKey(hash)) ") == blobHeads, "a download is one GET")
            let size = try #require(first.thumbnails.first?.size)
            let thumbnailKey = "/\(TestBucket.bucket)/\(TestBucket.prefix)/thumbs/\(hash.prefix(2))/\(hash.dropFirst(2).prefix(2))/\(hash)/\(size)."
            func storeRequests() -> (heads: Int, gets: Int) {
                (bucket.requests(containing: "\"HEAD \(thumbnailKey)"), bucket.requests(containing: "\"GET \(thumbnailKey)"))
            }
            let before = storeRequests()
            let thumbnail = try await server.request("GET", "/media/\(hash)/thumbnail/\(size)", token: token)
            #expect(thumbnail.status == 200)
            #expect(thumbnail.header("Content-Type") == "image/jpeg")
            #expect(thumbnail.body.starts(with: [0xFF, 0xD8]))
            // One GET, whose answer says the object is there before the head goes out; a revalidation asks nothing.
            let after = storeRequests()
            #expect(after.heads == before.heads && after.gets - before.gets == 1, "\(before) -> \(after)")
            let etag = try #require(thumbnail.header("ETag"))
            let cached = try await server.request("GET", "/media/\(hash)/thumbnail/\(size)", token: token, headers: ["If-None-Match": etag])
            #expect(cached.status == 304)
            #expect(storeRequests() == after)
            alice.close()
        }
    }

    @Test("a file above the multipart threshold goes up in parts and comes back byte-exact", .timeLimit(.minutes(3)))
    func multipart() async throws {
        try await MediaBackend.s3.withServer(multipartThreshold: 6 << 20) { server, bucket in
            guard let bucket else { return }
            let token = try await server.makeToken("alice", role: .customer)
            let bytes = Data(randomBytes(12 << 20, seed: 5))
            let done = try Self.uploaded(try await server.post(name: "big.bin", bytes: bytes, token: token))
            let key = Self.blobKey(done.attachment.sha256)
            #expect(bucket.requests(containing: "\"POST /\(TestBucket.bucket)/\(key)?uploads") == 1)
            #expect(bucket.requests(containing: "\"PUT /\(TestBucket.bucket)/\(key)?") >= 3)
            #expect(try await bucket.keys().contains(key))
            // The uploader may fetch their own upload once attached; an agent may fetch any attached blob.
            let (alice, _) = try await server.connect("alice", token: token)
            try alice.send(.send(Send(clientId: "m1", text: "file", attachments: [AttachmentReference(uploadId: done.uploadId)])))
            _ = try await alice.receive(timeout: frameWait) { if case .ack(let ack) = $0 { ack } else { nil } }
            let back = try await server.request("GET", "/media/\(done.attachment.sha256)", token: token)
            #expect(back.status == 200)
            #expect(back.body == bytes)
            alice.close()
        }
    }

    @Test("store down: uploads fail with store_failed (503); a WebSocket one stays resumable, an HTTP one is not kept; back on the same port, they work again", .timeLimit(.minutes(3)))
    func storeFaults() async throws {
        let bucket = try await TestBucket.start()
        var restarted: TestBucket?
        defer { bucket.stop(); restarted?.stop() }
        let server = try await MediaServer.start { $0.objectStore = bucket.configuration() }
        let token = try await server.makeToken("alice", role: .customer)
        let (alice, _) = try await server.connect("alice", token: token)
        let before = Data(randomBytes(5_000, seed: 1))
        let stored = try await ServingTests.attach(before, name: "before.bin", via: alice)

        bucket.stop()
        // HTTP: 503 with the routes' JSON error body; nothing kept, since only the WebSocket can resume.
        let refused = try await server.post(name: "down.bin", bytes: Data(randomBytes(4_000, seed: 2)), token: token)
        #expect(refused.status == 503)
        let error = try JSONDecoder().decode(ErrorFrame.self, from: refused.body)
        #expect(error.code == .storeFailed)
        #expect(error.message.contains("send it again") && !error.message.contains("resume"), "\(error.message)")
        #expect(try await server.isClean())
        #expect(try await server.request("GET", "/media/\(stored.sha256)", token: token).status == 503)
        // WebSocket: the upload is refused at its end, and kept.
        let pending = randomBytes(6_000, seed: 3)
        let ready = try await alice.beginUpload(UploadBegin(name: "later.bin", size: pending.count))
        _ = try await alice.sendUploadBytes(.bytes(pending), uploadId: ready.uploadId, from: 0, to: pending.count, chunkSize: ready.chunkSize)
        do {
            _ = try await alice.endUpload(ready.uploadId)
            Issue.record("the upload should have failed while the store is down")
        } catch .rejected(let frame) {
            #expect(frame.code == .storeFailed)
        }
        #expect(try await server.count("SELECT count(*) FROM uploads WHERE state = 'receiving'") == 1)
        #expect(server.files(under: "tmp") == ["\(ready.uploadId).part"])

        // Back (empty: moto keeps nothing), without restarting the server.
        restarted = try await TestBucket.start(port: bucket.port)
        let (offset, done) = try await alice.resumeUpload(.bytes(pending), uploadId: ready.uploadId)
        #expect(offset == pending.count)
        #expect(done.attachment.sha256 == sha256Hex(pending))
        let again = try Self.uploaded(try await server.post(name: "up.bin", bytes: Data(randomBytes(4_000, seed: 2)), token: token))
        #expect(!again.duplicate)
        // What the store lost is gone for clients: 410, as an expired attachment.
        let lost = try await server.request("GET", "/media/\(stored.sha256)", token: token)
        #expect(lost.status == 410)
        #expect(try JSONDecoder().decode(ErrorFrame.self, from: lost.body).code == .attachmentExpired)
        alice.close()
        await server.stop()
    }

    @Test("an upload of bytes whose deletion another node is carrying out waits, is refused with store_failed and kept; after it, stored again",
          .timeLimit(.minutes(3)))
    func uploadDuringClaimedDeletion() async throws {
        try await MediaBackend.s3.withServer { server, bucket in
            guard let bucket else { return }
            let token = try await server.makeToken("alice", role: .customer)
            let (alice, _) = try await server.connect("alice", token: token)
            let bytes = randomBytes(5_000, seed: 21)
            let hash = try await ServingTests.attach(Data(bytes), name: "a.bin", via: alice).sha256
            // Another node pruned the blob and its deleter holds a live claim on the deletion of its object.
            try await server.sqlite().execute("""
                UPDATE blobs SET state = 'pruned', removed_at = 1 WHERE hash = ?;
                INSERT INTO blob_deletions (hash, disposal, thumbnails, created_at, claimed_at, claim)
                VALUES (?, 'delete', 1, 1, ?, 'other-node')
                """, hash, hash, epochMilliseconds())
            // The object is still there, but the upload must not trust it: it waits for the claim, then gives up.
            let ready = try await alice.beginUpload(UploadBegin(name: "again.bin", size: bytes.count))
            _ = try await alice.sendUploadBytes(.bytes(bytes), uploadId: ready.uploadId, from: 0, to: bytes.count, chunkSize: ready.chunkSize)
            do {
                _ = try await alice.endUpload(ready.uploadId)
                Issue.record("the upload should wait for the deletion and be refused")
            } catch let error as UploadError {
                guard case .rejected(let frame) = error else { throw error }
                #expect(frame.code == .storeFailed)
            }
            #expect(try await server.count("SELECT count(*) FROM blobs WHERE state = 'pruned'") == 1)
            // The deleter finishes: the object goes, then its row. The kept upload resumes and puts the bytes again.
            try await bucket.withClient { try await $0.delete(Self.blobKey(hash)) }
            try await server.sqlite().execute("DELETE FROM blob_deletions")
            let (_, done) = try await alice.resumeUpload(.bytes(bytes), uploadId: ready.uploadId)
            #expect(!done.duplicate)
            #expect(try await bucket.keys().contains(Self.blobKey(hash)))
            let back = try await server.request("GET", "/media/\(hash)", token: token)
            #expect(back.status == 200)
            #expect(back.body == Data(bytes))
            alice.close()
        }
    }

    @Test("chat-admin on the bucket: stats, verify (410 and exit 2 for a deleted object), repair, prune, gc of an interrupted prune",
          .timeLimit(.minutes(4)))
    func adminOnBucket() async throws {
        try await MediaBackend.s3.withServer { server, bucket in
            guard let bucket else { return }
            let token = try await server.makeToken("alice", role: .customer)
            let (alice, _) = try await server.connect("alice", token: token)
            var uploaded: [String] = []
            for seed in 1...4 as ClosedRange<UInt64> {
                uploaded.append(try await ServingTests.attach(Data(randomBytes(3_000 + Int(seed), seed: seed)), name: "f\(seed).bin", via: alice).sha256)
            }
            let hashes = uploaded
            alice.close()
            func admin(_ arguments: [String]) async throws -> AdminResult {
                try await runBuilt("chat-admin", ["media"] + arguments + ["--data-dir", server.directory, "--media-store", bucket.url],
                                   environment: testCredentialsEnvironment)
            }
            let stats = try await admin(["stats", "--json"])
            #expect(stats.status == 0, "\(stats.stderr)")
            let figures = try JSONDecoder().decode(MediaStats.self, from: Data(stats.stdout.utf8))
            #expect(figures.blobs == 4)
            #expect(figures.blobFiles == 4)

            // Deleted behind the server's back: downloads say 410, verify reports it and exits 2.
            try await bucket.withClient { try await $0.delete(Self.blobKey(hashes[0])) }
            #expect(try await server.request("GET", "/media/\(hashes[0])", token: token).status == 410)
            let verify = try await admin(["verify"])
            #expect(verify.status == 2)
            #expect(verify.stdout.contains(hashes[0]))
            let repair = try await admin(["verify", "--repair"])
            #expect(repair.status == 0, "\(repair.stderr)")
            #expect(try await server.count("SELECT count(*) FROM blobs WHERE state = 'quarantined'") == 1)
            #expect(try await admin(["verify"]).status == 0)

            // Prune: the row is marked and the object goes after the commit; nothing stays pending.
            try await server.sqlite().execute("UPDATE blobs SET last_referenced_at = last_referenced_at - 86400000 * 30 WHERE hash = ?",
                                              hashes[1])
            let prune = try await admin(["prune", "--older-than", "7d"])
            #expect(prune.status == 0, "\(prune.stderr)")
            #expect(try await !bucket.keys().contains(Self.blobKey(hashes[1])))
            #expect(try await server.count("SELECT count(*) FROM blob_deletions") == 0)
            #expect(try await server.request("GET", "/media/\(hashes[1])", token: token).status == 410)

            // A prune interrupted after its commit leaves a pending deletion: gc finishes it.
            try await server.sqlite().execute("""
                UPDATE blobs SET state = 'pruned', removed_at = 1 WHERE hash = ?;
                INSERT INTO blob_deletions (hash, disposal, thumbnails, created_at) VALUES (?, 'delete', 1, 1)
                """, hashes[2], hashes[2])
            #expect(try await bucket.keys().contains(Self.blobKey(hashes[2])))
            let gc = try await admin(["gc", "--json"])
            #expect(gc.status == 0, "\(gc.stderr)")
            #expect(try await !bucket.keys().contains(Self.blobKey(hashes[2])))
            #expect(try await bucket.keys().contains(Self.blobKey(hashes[3])))
            #expect(try await server.count("SELECT count(*) FROM blob_deletions") == 0)
            #expect(try await server.request("GET", "/media/\(hashes[3])", token: token).status == 200)
        }
    }

    @Test("migrate copies the local store into a bucket, verified; a re-run copies only what is missing, with progress; a corrupted blob is reported (exit 2) and not copied; the server then serves from the bucket", .timeLimit(.minutes(4)))
    func migrate() async throws {
        let directory = MediaServer.makeDirectory()
        var hashes: [String] = []
        let local = try await MediaServer.start(directory: directory)
        let token = try await local.makeToken("alice", role: .customer)
        let (alice, _) = try await local.connect("alice", token: token)
        let image = try Data(contentsOf: URL(fileURLWithPath: Self.corpus + "/jpeg/testimgint.jpg"))
        hashes.append(try await ServingTests.attach(image, name: "photo.jpg", via: alice).sha256)
        hashes.append(try await ServingTests.attach(Data(randomBytes(7_000, seed: 8)), name: "doc.bin", via: alice).sha256)
        alice.close()
        let layout = MediaLayout(directory: local.mediaDirectory)
        await local.stop()

        let bucket = try await TestBucket.start()
        defer { bucket.stop() }
        func migrate(json: Bool = true, _ extra: [String] = []) async throws -> AdminResult {
            try await runBuilt("chat-admin", ["media", "migrate", "--to", bucket.url, "--data-dir", directory] + (json ? ["--json"] : []) + extra,
                               environment: testCredentialsEnvironment)
        }
        func figures(_ result: AdminResult) throws -> MigrationFigures {
            try JSONDecoder().decode(MigrationFigures.self, from: Data(result.stdout.utf8))
        }
        let firstRun = try await migrate()
        #expect(firstRun.status == 0, "\(firstRun.stderr)")
        let first = try figures(firstRun)
        #expect(first.blobsCopied == 2)
        #expect(first.thumbnailsCopied >= 1)
        #expect(first.corrupted.isEmpty && first.unreadable.isEmpty)
        let second = try figures(try await migrate())
        #expect(second.blobsCopied == 0 && second.thumbnailsCopied == 0)
        #expect(second.blobsSkipped == 2 && second.thumbnailsSkipped == first.thumbnailsCopied)
        #expect(try await bucket.keys().filter { $0.contains("/blobs/") } == hashes.map(Self.blobKey).sorted())

        // As if a run had stopped before the photo and its thumbnails: the next one copies those, and only those.
        let thumbnails = try await bucket.keys().filter { $0.contains("/thumbs/") }
        try await bucket.withClient { client in
            for key in [Self.blobKey(hashes[0])] + thumbnails { try await client.delete(key) }
        }
        let resumed = try await migrate(json: false)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stdout.contains("copied 1 blobs"), "\(resumed.stdout)")
        #expect(resumed.stdout.contains("\(thumbnails.count) thumbnails;"), "\(resumed.stdout)")
        // Not a terminal: progress comes as lines, the last one complete.
        let total = 2 + thumbnails.count
        #expect(resumed.stderr.contains("copying: \(total) of \(total) objects"), "\(resumed.stderr)")
        #expect(try await bucket.keys().contains(Self.blobKey(hashes[0])))

        // Bytes that are not their name are reported, not carried over.
        try await bucket.withClient { try await $0.delete(Self.blobKey(hashes[1])) }
        let path = layout.blobPath(hashes[1])
        var corrupted = try Data(contentsOf: URL(fileURLWithPath: path))
        corrupted[100] ^= 0xFF
        try corrupted.write(to: URL(fileURLWithPath: path))
        let refused = try await migrate()
        #expect(refused.status == 2, "\(refused.stderr)")
        let report = try figures(refused)
        #expect(report.corrupted == [hashes[1]] && report.blobsCopied == 0)
        #expect(try await !bucket.keys().contains(Self.blobKey(hashes[1])))
        #expect(FileManager.default.fileExists(atPath: path), "the local store is left as it is")

        // The source is the local directory, the target --to: a second store option is a usage error.
        #expect(try await migrate(["--media-store", bucket.url]).status == 64)

        let remote = try await MediaServer.start(directory: directory) { $0.objectStore = bucket.configuration() }
        let photo = try await remote.request("GET", "/media/\(hashes[0])", token: token)
        #expect(photo.status == 200)
        #expect(photo.body == image)
        await remote.stop()
    }

    @Test("a bad media store URL or missing credentials: one clear line and a non-zero exit")
    func badConfiguration() async throws {
        let noCredentials = ["AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"]
        let badURL = try await runBuilt("chat-admin", ["media", "stats", "--media-store", "s3://Bad_Bucket/x"],
                                        environment: testCredentialsEnvironment)
        #expect(badURL.status != 0)
        #expect(badURL.stderr.contains("bucket"))
        #expect(badURL.stderr.split(separator: "\n").count == 1)
        let missing = try await runBuilt("chat-admin", ["media", "stats", "--media-store", "s3://media/x?endpoint=http://127.0.0.1:9"],
                                         environment: noCredentials)
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("credentials"))
        let server = try await runBuilt("chat-server", ["--port", "0", "--data-dir", MediaServer.makeDirectory(),
                                                        "--media-store", "s3://media/x?endpoint=http://127.0.0.1:9"],
                                        environment: noCredentials)
        #expect(server.status != 0)
        #expect(server.stderr.contains("credentials"))
        #expect(!server.stderr.contains("testing"))
    }

    @Test("two nodes on PostgreSQL share one bucket: upload through A, download and thumbnail through B", .timeLimit(.minutes(4)))
    func twoNodes() async throws {
        try await PostgresCluster.with { cluster in
            let bucket = try await TestBucket.start()
            defer { bucket.stop() }
            let url = cluster.url()
            let a = try await MediaServer.start { $0.database = url; $0.databaseTimeout = databaseWait; $0.objectStore = bucket.configuration() }
            let b = try await MediaServer.start { $0.database = url; $0.databaseTimeout = databaseWait; $0.objectStore = bucket.configuration() }
            var logger = Logger(label: "test.s3.nodes")
            logger.logLevel = .error
            let token = try await PostgresDatabase.withDatabase(url: url, logger: logger, deadline: databaseWait) { database in
                try await database.storage.tokens.create(username: "alice", role: .customer).token
            }
            let (alice, _) = try await a.connect("alice", token: token)
            let image = try Data(contentsOf: URL(fileURLWithPath: Self.corpus + "/jpeg/testimgint.jpg"))
            let attachment = try await ServingTests.attach(image, name: "photo.jpg", via: alice)
            alice.close()
            let whole = try await b.request("GET", "/media/\(attachment.sha256)", token: token)
            #expect(whole.status == 200)
            #expect(whole.body == image)
            let size = try #require(attachment.thumbnails.first?.size)
            let thumbnail = try await b.request("GET", "/media/\(attachment.sha256)/thumbnail/\(size)", token: token)
            #expect(thumbnail.status == 200)
            #expect(thumbnail.body.starts(with: [0xFF, 0xD8]))
            await a.stop()
            await b.stop()
        }
    }
}

/// The JSON of `chat-admin media migrate --json`.
struct MigrationFigures: Decodable {
    var blobsCopied: Int
    var blobsSkipped: Int
    var thumbnailsCopied: Int
    var thumbnailsSkipped: Int
    var corrupted: [String]
    var unreadable: [String]
}
