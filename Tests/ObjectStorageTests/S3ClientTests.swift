import Crypto
import Foundation
import NIOCore
@testable import ObjectStorage
import TestProcesses
import Testing

/// The client against a real S3-compatible server: moto, started once for the suite by the `.motoServer` trait
/// and stopped after it however its tests end. Each test has a bucket of its own.
@Suite("S3 client against moto", .motoServer, .serialized, .timeLimit(.minutes(3)))
struct S3ClientTests {
    @Test("put a small file, head, get it whole and a range, get and head what is missing, delete")
    func smallObject() async throws {
        try await withClient { client in
            let bytes = randomBytes(200_000)
            let file = try TemporaryFile(bytes)
            defer { file.remove() }
            let key = try client.configuration.location.blobKey(sha256: sha256(bytes))

            let put = try await client.put(key, fromFile: file.path, contentType: "application/octet-stream")
            #expect(put.size == bytes.count && put.etag != nil)
            let head = try #require(try await client.head(key))
            #expect(head.size == bytes.count && head.etag == put.etag)

            let whole = try #require(try await client.get(key))
            #expect(whole.status == 200 && whole.range == nil && whole.contentLength == bytes.count)
            #expect(try await collect(whole.body) == bytes)

            let part = try #require(try await client.get(key, range: 1000...66_535))
            #expect(part.status == 206 && part.range == 1000...66_535 && part.contentLength == 65_536)
            #expect(part.info.size == bytes.count, "the whole object's size, from Content-Range")
            #expect(try await collect(part.body) == Array(bytes[1000...66_535]))

            let missing = try client.configuration.location.blobKey(sha256: String(repeating: "0", count: 64))
            #expect(try await client.get(missing) == nil)
            #expect(try await client.head(missing) == nil)

            try await client.delete(key)
            #expect(try await client.head(key) == nil)
            try await client.delete(key)  // gone already: still fine
        }
    }

    @Test("an empty file and small bytes round-trip; a copy on the store's side")
    func emptyBytesAndCopy() async throws {
        try await withClient { client in
            let file = try TemporaryFile([])
            defer { file.remove() }
            try await client.put("empty", fromFile: file.path)
            #expect(try await client.head("empty")?.size == 0)
            let empty = try #require(try await client.get("empty"))
            #expect(try await collect(empty.body).isEmpty)

            let thumbnail: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3]
            #expect(try await client.put("thumbs/t.jpg", bytes: thumbnail, contentType: "image/jpeg").size == 7)
            let head = try #require(try await client.head("thumbs/t.jpg"))
            #expect(head.contentType == "image/jpeg")
            #expect(try await collect(try #require(try await client.get("thumbs/t.jpg")).body) == thumbnail)

            #expect(try await client.copy(from: "thumbs/t.jpg", to: "quarantine/t.jpg"))
            #expect(try await collect(try #require(try await client.get("quarantine/t.jpg")).body) == thumbnail)
            #expect(try await client.copy(from: "thumbs/missing.jpg", to: "quarantine/missing.jpg") == false)
        }
    }

    @Test("a file over the threshold goes up in parts and comes back identical; no uploads are left")
    func multipart() async throws {
        try await withClient(threshold: 6 << 20, partSize: 5 << 20) { client in
            let bytes = randomBytes((12 << 20) + 12_345)  // three parts, the last short
            let file = try TemporaryFile(bytes)
            defer { file.remove() }
            let hash = sha256(bytes)
            let key = try client.configuration.location.blobKey(sha256: hash)
            let put = try await client.put(key, fromFile: file.path)
            #expect(put.size == bytes.count)
            #expect(put.etag?.hasSuffix("-3") == true, "S3's multipart ETag names the part count: \(put.etag ?? "nil")")
            #expect(try await client.head(key)?.size == bytes.count)

            let download = try #require(try await client.get(key))
            var hasher = SHA256()
            var largest = 0
            for try await chunk in download.body {
                largest = max(largest, chunk.readableBytes)
                hasher.update(data: Data(chunk.readableBytesView))
            }
            #expect(hex(hasher.finalize()) == hash, "read back by hash")
            #expect(largest < 4 << 20, "the body arrives in pieces, not whole")
            #expect(try await client.pendingMultipartUploads().isEmpty)
        }
    }

    @Test("a multipart upload that fails is aborted: no parts stay in the store")
    func abortedMultipart() async throws {
        // Parts of 1 MiB: the store takes each, then refuses to complete (EntityTooSmall: parts but the last
        // must have 5 MiB), as after a failure half way.
        try await withClient(threshold: 1 << 20, partSize: 1 << 20) { client in
            let file = try TemporaryFile(randomBytes(3 << 20))
            defer { file.remove() }
            do throws(ObjectStorageError) {
                try await client.put("aborted", fromFile: file.path)
                Issue.record("a multipart upload with parts under 5 MiB was completed")
            } catch {
                guard case .multipartUpload(let key, _, let aborted, let cause) = error else {
                    Issue.record("unexpected error: \(error)")
                    return
                }
                #expect(key == "aborted" && aborted)
                #expect("\(cause)".contains("EntityTooSmall"), "\(cause)")
                #expect(error.description.contains("aborted"), "\(error)")
            }
            #expect(try await client.pendingMultipartUploads().isEmpty)
            #expect(try await client.head("aborted") == nil)
        }
    }

    @Test("listing pages with continuation tokens, as pages and as a sequence, under a prefix only")
    func listing() async throws {
        try await withClient { client in
            let file = try TemporaryFile(Array("x".utf8))
            defer { file.remove() }
            let keys = (1...5).map { "list/item-\($0)" }
            for key in keys + ["other/item"] { try await client.put(key, fromFile: file.path) }

            var pages: [[String]] = []
            var token: String?
            repeat {
                let page = try await client.listPage(prefix: "list/", continuationToken: token, maxKeys: 2)
                pages.append(page.objects.map(\.key))
                token = page.nextContinuationToken
            } while token != nil && pages.count < 10
            #expect(pages == [["list/item-1", "list/item-2"], ["list/item-3", "list/item-4"], ["list/item-5"]])

            var listed: [ObjectSummary] = []
            for try await object in client.list(prefix: "list/", pageSize: 2) { listed.append(object) }
            #expect(listed.map(\.key) == keys && listed.allSatisfy { $0.size == 1 && $0.etag != nil })
            #expect(try await client.listPage(prefix: "none/").objects.isEmpty)
        }
    }

    @Test("a missing bucket is a 4xx with S3's code and a hint, not retried and not a missing object")
    func missingBucket() async throws {
        try await withClient(createBucket: false) { client in
            do throws(ObjectStorageError) {
                _ = try await client.get("anything")
                Issue.record("no error for a missing bucket")
            } catch {
                guard case .rejected(_, let response) = error else { Issue.record("\(error)"); return }
                #expect(response.status == 404 && response.code == "NoSuchBucket")
                #expect(error.description.contains("NoSuchBucket") && error.description.contains("create the bucket"))
            }
        }
    }

    @Test("unfinished multipart uploads: listed under a prefix with their start, and aborted")
    func unfinishedUploads() async throws {
        try await withClient { client in
            let file = try TemporaryFile(randomBytes(1_000))
            defer { file.remove() }
            for key in ["left/a", "left/b", "other/c"] {
                let id = try await client.createMultipartUpload(key, contentType: nil)
                _ = try await client.uploadPart(key, uploadID: id, number: 1, path: file.path, range: 0..<1_000)
            }
            let left = try await client.pendingMultipartUploads(prefix: "left/")
            #expect(left.map(\.key).sorted() == ["left/a", "left/b"])
            #expect(left.allSatisfy { $0.initiated != nil })
            for upload in try await client.pendingMultipartUploads() {
                try await client.abortMultipartUpload(upload.key, uploadID: upload.uploadID)
            }
            #expect(try await client.pendingMultipartUploads().isEmpty)
        }
    }

    func withClient(createBucket: Bool = true, threshold: Int = 16 << 20, partSize: Int = 8 << 20,
                    _ body: (S3Client) async throws -> Void) async throws {
        let moto = try #require(MotoServer.current, "the suite's .motoServer trait starts moto")
        let bucket = "test-\(UUID().uuidString.lowercased().prefix(18))"
        let location = try S3Location(parsing: "s3://\(bucket)/chat?endpoint=\(moto.endpoint)")
        let client = S3Client(configuration: S3Configuration(
            location: location, credentials: Credentials(accessKeyID: "testing", secretAccessKey: "testing"),
            multipartThreshold: threshold, partSize: partSize))
        do {
            if createBucket { try await client.createBucket() }
            try await body(client)
        } catch {
            try await client.shutdown()
            throw error
        }
        try await client.shutdown()
    }
}

@Suite("S3 client faults", .timeLimit(.minutes(2)))
struct S3ClientFaultTests {
    @Test("wrong credentials: 403 with S3's code, never the secret")
    func wrongCredentials() async throws {
        let moto = try await MotoServer.start(environment: ["INITIAL_NO_AUTH_ACTION_COUNT": "0"])
        defer { moto.stop() }
        let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYWRONGKEY"
        let client = S3Client(configuration: S3Configuration(
            location: try S3Location(parsing: "s3://media/chat?endpoint=\(moto.endpoint)"),
            credentials: Credentials(accessKeyID: "AKIAWRONGKEY", secretAccessKey: secret)))
        let file = try TemporaryFile(Array("hello".utf8))
        defer { file.remove() }
        let result = await outcome { try await client.put("k", fromFile: file.path) }
        try await client.shutdown()
        guard case .failure(let error) = result, case .rejected(_, let response) = error else {
            Issue.record("\(result)")
            return
        }
        #expect(response.status == 403 && response.code == "InvalidAccessKeyId", "\(response)")
        #expect(error.description.contains("InvalidAccessKeyId") && error.description.contains("AWS_SECRET_ACCESS_KEY"))
        #expect(!error.description.contains(secret) && !error.description.contains("Signature="))
        // That a 4xx is not retried is checked against a scripted server in `slowDownForever`'s sibling cases.
    }

    @Test("an unreachable store: `unavailable` after the bounded retries, quickly")
    func unreachable() async throws {
        let port = try freeLoopbackPort()
        let client = S3Client(configuration: S3Configuration(
            location: try S3Location(parsing: "s3://media/chat?endpoint=http://127.0.0.1:\(port)"),
            credentials: Credentials(accessKeyID: "AKIAEXAMPLE", secretAccessKey: "TOPSECRETKEY"),
            retry: RetryPolicy(attempts: 3, initialBackoff: .milliseconds(100), maxBackoff: .milliseconds(400)),
            connectTimeout: .seconds(2)))
        let started = ContinuousClock.now
        let result = await outcome { try await client.head("blobs/x") }
        let elapsed = ContinuousClock.now - started
        try await client.shutdown()
        guard case .failure(let error) = result, case .unavailable(_, let endpoint, let attempts, _) = error else {
            Issue.record("\(result)")
            return
        }
        #expect(attempts == 3 && endpoint == "http://127.0.0.1:\(port)")
        // The backoff was waited (a lower bound holds on any machine; an upper one would fail under load).
        #expect(elapsed >= .milliseconds(100), "\(elapsed)")
        #expect(error.description.contains("check that it runs") && !error.description.contains("TOPSECRETKEY"), "\(error)")
    }

    @Test("503 SlowDown twice, then an answer: retried with a fresh signature each time, and it succeeds")
    func slowDownThenSuccess() async throws {
        let server = try FakeS3Server([
            .answer(status: 503, body: Self.slowDown), .answer(status: 503, body: Self.slowDown),
            .answer(status: 200, headers: ["Content-Length": "5", "ETag": "\"abc\""]),
        ])
        defer { server.stop() }
        let client = fakeClient(server)
        let result = await outcome { try await client.head("blobs/k") }
        try await client.shutdown()
        #expect(try result.get() == ObjectInfo(key: "blobs/k", size: 5, etag: "abc", contentType: nil))
        let requests = server.requests
        #expect(requests.count == 3)
        for head in requests {
            #expect(head.hasPrefix("HEAD /media/blobs/k HTTP/1.1"), "\(head)")
            #expect(head.contains("AWS4-HMAC-SHA256 Credential=AKIAFAKE/") && head.contains("x-amz-content-sha256:"))
            #expect(head.lowercased().contains("host: 127.0.0.1:\(server.port)"), "\(head)")
        }
    }

    @Test("503 SlowDown every time: `unavailable` after the bounded attempts, with S3's code, without secrets")
    func slowDownForever() async throws {
        let server = try FakeS3Server([.answer(status: 503, body: Self.slowDown)])
        defer { server.stop() }
        let client = fakeClient(server)
        let file = try TemporaryFile(randomBytes(1000))
        defer { file.remove() }
        let result = await outcome { try await client.put("blobs/k", fromFile: file.path) }
        try await client.shutdown()
        guard case .failure(let error) = result, case .unavailable(_, _, let attempts, let cause) = error else {
            Issue.record("\(result)")
            return
        }
        #expect(attempts == 3 && server.requests.count == 3)
        #expect((cause as? S3ErrorResponse)?.code == "SlowDown", "\(cause)")
        #expect(error.description.contains("SlowDown") && error.description.contains("after 3 attempt"), "\(error)")
        #expect(!error.description.contains("FAKESECRET") && !error.description.contains("Signature="))
    }

    @Test("a store that accepts and never answers: the read timeout, then `unavailable`")
    func silentStore() async throws {
        let server = try FakeS3Server([.silent])
        defer { server.stop() }
        let client = fakeClient(server, readTimeout: .milliseconds(300), attempts: 2)
        let started = ContinuousClock.now
        let result = await outcome { try await client.get("blobs/k") }
        let elapsed = ContinuousClock.now - started
        try await client.shutdown()
        guard case .failure(.unavailable(_, _, let attempts, _)) = result else {
            Issue.record("\(result)")
            return
        }
        #expect(attempts == 2 && server.requests.count == 2)
        #expect(elapsed >= .milliseconds(600), "\(elapsed)")
    }

    @Test("a part the store refuses: the upload is aborted at once, and the error says so")
    func refusedPart() async throws {
        let server = try FakeS3Server([
            .answer(status: 200, body: "<InitiateMultipartUploadResult><Bucket>media</Bucket><Key>big</Key>"
                + "<UploadId>U1</UploadId></InitiateMultipartUploadResult>"),
            .answer(status: 200, headers: ["ETag": "\"p1\""]),
            .answer(status: 400, body: "<Error><Code>InvalidArgument</Code><Message>Part refused</Message></Error>"),
            .answer(status: 204),
        ])
        defer { server.stop() }
        let client = fakeClient(server, multipart: 1 << 20)
        let file = try TemporaryFile(randomBytes((5 << 20) / 2))
        defer { file.remove() }
        let result = await outcome { try await client.put("big", fromFile: file.path) }
        try await client.shutdown()
        guard case .failure(let error) = result, case .multipartUpload(let key, let uploadID, let aborted, let cause) = error else {
            Issue.record("\(result)")
            return
        }
        #expect(key == "big" && uploadID == "U1" && aborted)
        #expect("\(cause)".contains("InvalidArgument") && "\(cause)".contains("Part refused"), "\(cause)")
        let lines = server.requests.map { $0.split(separator: "\r\n").first.map(String.init) ?? "" }
        #expect(lines == [
            "POST /media/big?uploads= HTTP/1.1", "PUT /media/big?partNumber=1&uploadId=U1 HTTP/1.1",
            "PUT /media/big?partNumber=2&uploadId=U1 HTTP/1.1", "DELETE /media/big?uploadId=U1 HTTP/1.1",
        ])
        #expect(server.requests[1].lowercased().contains("content-length: 1048576"))
    }

    @Test("a CompleteMultipartUpload answered too late: the retry finds the upload gone, the object of the right size proves it done")
    func lateCompletion() async throws {
        let size = 2 << 20
        for objectThere in [true, false] {
            let server = try FakeS3Server([
                .answer(status: 200, body: "<InitiateMultipartUploadResult><Bucket>media</Bucket><Key>big</Key>"
                    + "<UploadId>U1</UploadId></InitiateMultipartUploadResult>"),
                .answer(status: 200, headers: ["ETag": "\"p1\""]),
                .answer(status: 200, headers: ["ETag": "\"p2\""]),
                .silent,
                .answer(status: 404, body: "<Error><Code>NoSuchUpload</Code><Message>gone</Message></Error>"),
                objectThere ? .answer(status: 200, headers: ["Content-Length": "\(size)", "ETag": "\"e-2\""])
                    : .answer(status: 404),
                .answer(status: 204),
            ])
            defer { server.stop() }
            let client = fakeClient(server, readTimeout: .milliseconds(300), multipart: 1 << 20)
            let file = try TemporaryFile(randomBytes(size))
            defer { file.remove() }
            let result = await outcome { try await client.put("big", fromFile: file.path) }
            try await client.shutdown()
            let lines = server.requests.map { $0.split(separator: "\r\n").first.map(String.init) ?? "" }
            let expected = [
                "POST /media/big?uploads= HTTP/1.1", "PUT /media/big?partNumber=1&uploadId=U1 HTTP/1.1",
                "PUT /media/big?partNumber=2&uploadId=U1 HTTP/1.1", "POST /media/big?uploadId=U1 HTTP/1.1",
                "POST /media/big?uploadId=U1 HTTP/1.1", "HEAD /media/big HTTP/1.1",
            ]
            if objectThere {
                #expect(try result.get() == ObjectInfo(key: "big", size: size, etag: "e-2", contentType: nil))
                #expect(lines == expected)
            } else {
                guard case .failure(.multipartUpload(_, _, let aborted, let cause)) = result else {
                    Issue.record("\(result)")
                    continue
                }
                #expect(aborted && "\(cause)".contains("NoSuchUpload"), "\(cause)")
                #expect(lines == expected + ["DELETE /media/big?uploadId=U1 HTTP/1.1"])
            }
        }
    }

    @Test("a multipart upload cancelled while a part is in flight is still aborted")
    func cancelledMultipart() async throws {
        let server = try FakeS3Server([
            .answer(status: 200, body: "<InitiateMultipartUploadResult><UploadId>U2</UploadId></InitiateMultipartUploadResult>"),
            .silent,
            .answer(status: 204),
        ])
        defer { server.stop() }
        let client = fakeClient(server, multipart: 1 << 20)
        let file = try TemporaryFile(randomBytes(3 << 20))
        defer { file.remove() }
        let upload = Task { await outcome { try await client.put("big", fromFile: file.path) } }
        let deadline = ContinuousClock.now + .seconds(60)
        while server.requests.count < 2, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        upload.cancel()
        let result = await upload.value
        try await client.shutdown()
        guard case .failure(.cancelled) = result else {
            Issue.record("\(result)")
            return
        }
        #expect(server.requests.last?.hasPrefix("DELETE /media/big?uploadId=U2 HTTP/1.1") == true, "\(server.requests)")
    }

    @Test("unfinished multipart uploads a store pages are followed by their markers")
    func pagedUnfinishedUploads() async throws {
        let server = try FakeS3Server([
            .answer(status: 200, body: "<ListMultipartUploadsResult><IsTruncated>true</IsTruncated><NextKeyMarker>k1</NextKeyMarker>"
                + "<NextUploadIdMarker>u1</NextUploadIdMarker><Upload><Key>k1</Key><UploadId>u1</UploadId></Upload></ListMultipartUploadsResult>"),
            .answer(status: 200, body: "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated>"
                + "<Upload><Key>k2</Key><UploadId>u2</UploadId><Initiated>2026-11-30T10:00:00.000Z</Initiated></Upload></ListMultipartUploadsResult>"),
        ])
        defer { server.stop() }
        let client = fakeClient(server)
        let result = await outcome { try await client.pendingMultipartUploads() }
        try await client.shutdown()
        #expect(try result.get() == [PendingUpload(key: "k1", uploadID: "u1"),
                                     PendingUpload(key: "k2", uploadID: "u2", initiated: "2026-11-30T10:00:00.000Z")])
        #expect(server.requests.count == 2)
        #expect(server.requests.last?.hasPrefix("GET /media?key-marker=k1&upload-id-marker=u1&uploads= HTTP/1.1") == true,
                "\(server.requests)")
    }

    @Test("a file put with its SHA-256 is signed with it, so the store can check the bytes; without it, unsigned")
    func signedPayload() async throws {
        let server = try FakeS3Server([
            .answer(status: 200, headers: ["ETag": "\"e1\""]),
            .answer(status: 200, headers: ["ETag": "\"e2\""]),
            // What S3 answers when the bytes are not the ones signed for: refused, not retried.
            .answer(status: 400, body: "<Error><Code>XAmzContentSHA256Mismatch</Code>"
                + "<Message>The provided 'x-amz-content-sha256' header does not match what was computed.</Message></Error>"),
        ])
        defer { server.stop() }
        let client = fakeClient(server)
        let bytes = randomBytes(3_000)
        let file = try TemporaryFile(bytes)
        defer { file.remove() }
        let hash = sha256(bytes)
        _ = try await client.put("blob", fromFile: file.path, sha256: hash)
        _ = try await client.put("other", fromFile: file.path)
        let refused = await outcome { try await client.put("bad", fromFile: file.path, sha256: String(repeating: "0", count: 64)) }
        try await client.shutdown()
        let heads = server.requests.map { $0.lowercased() }
        #expect(heads.count == 3)
        #expect(heads[0].contains("x-amz-content-sha256: \(hash)"), "\(heads[0])")
        #expect(heads[0].contains("signedheaders=") && heads[0].contains("x-amz-content-sha256;"), "the hash is signed")
        #expect(heads[1].contains("x-amz-content-sha256: unsigned-payload"))
        guard case .failure(.rejected(_, let response)) = refused else {
            Issue.record("\(refused)")
            return
        }
        #expect(response.code == "XAmzContentSHA256Mismatch")
    }

    static let slowDown = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code>"
        + "<Message>Please reduce your request rate.</Message><RequestId>R1</RequestId></Error>"

    func fakeClient(_ server: FakeS3Server, readTimeout: Duration = .seconds(5), attempts: Int = 3,
                    multipart: Int = 16 << 20) -> S3Client {
        S3Client(configuration: S3Configuration(
            location: S3Location(bucket: "media", prefix: "chat", endpoint: .init(secure: false, host: "127.0.0.1", port: server.port)),
            credentials: Credentials(accessKeyID: "AKIAFAKE", secretAccessKey: "FAKESECRET"),
            retry: RetryPolicy(attempts: attempts, initialBackoff: .milliseconds(20), maxBackoff: .milliseconds(50)),
            readTimeout: readTimeout, multipartThreshold: multipart, partSize: multipart))
    }

    @Test("backoff doubles from the initial wait up to the maximum, half of it random")
    func backoff() {
        let policy = RetryPolicy(attempts: 5, initialBackoff: .milliseconds(100), maxBackoff: .milliseconds(400))
        for (attempt, full) in [(1, 100), (2, 200), (3, 400), (4, 400)] {
            let delay = policy.backoff(after: attempt)
            #expect(delay >= .milliseconds(full / 2) && delay <= .milliseconds(full), "attempt \(attempt): \(delay)")
        }
    }
}
