import ChatClient
import ChatProtocol
import ChatServer
@_spi(Testing) import ChatServerFixture
@_spi(Testing) import ChatStore
import Foundation
import MediaObjectStore
import MediaStore
import ObjectStorage
import TestProcesses
import Testing

/// What the bucket leaves behind when it fails, and the server's answers while it does: leftover multipart uploads
/// and `media gc`, a store answering 5xx (a `FakeS3Server` in front of moto turns faulty and healthy again), and the
/// built `chat-server` run as a process on a bucket.
@Suite("Media on S3: leftovers and faults", .serialized, .timeLimit(.minutes(3)))
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
}

/// The JSON of `chat-admin media gc --json`, as far as these tests read it.
struct GCFigures: Decodable {
    var multipartUploadsAborted: [String]
}
