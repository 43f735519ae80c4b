import Foundation
import MediaObjectStore
import MediaStore
import NIOCore
import ObjectStorage
import Testing

/// What `S3BlobStorage` does beyond the protocol's common ground (covered end to end with the local directory in
/// ServingTests and S3MediaTests): the HEAD before a put, paged listings, strays, quarantine by copy, deferred removal.
@Suite("S3BlobStorage: a bucket behind the BlobStorage protocol", .serialized)
struct S3BlobStorageTests {
    private func put(_ bytes: [UInt8], as key: BlobKey, in storage: S3BlobStorage) async throws {
        let temporary = FileManager.default.temporaryDirectory.appendingPathComponent("s3-put-\(UUID().uuidString)").path
        try Data(bytes).write(to: URL(fileURLWithPath: temporary))
        try await storage.put(key, temporaryFile: temporary)
        #expect(!FileManager.default.fileExists(atPath: temporary), "the temporary file is consumed")
    }

    private func read(_ key: BlobKey, _ range: Range<Int>?, from storage: S3BlobStorage) async throws -> [UInt8] {
        try await storage.read(key, range: range) { chunks in
            var bytes: [UInt8] = []
            for try await chunk in chunks { bytes += chunk.readableBytesView }
            return bytes
        }
    }

    @Test("put skips identical bytes, ranged reads, paged listings with strays, quarantine, missing objects", .timeLimit(.minutes(2)))
    func bucket() async throws {
        let bucket = try await TestBucket.start()
        defer { bucket.stop() }
        try await bucket.withClient(listPageSize: 2) { client in
            let storage = S3BlobStorage(client: client)
            #expect(storage.deletesAfterCommit)
            var keys: [BlobKey] = []
            var contents: [BlobKey: [UInt8]] = [:]
            for seed in 1...5 as ClosedRange<UInt64> {
                let bytes = randomBytes(2_000 + Int(seed), seed: seed)
                let key = try BlobKey(blob: sha256Hex(Data(bytes)))
                try await put(bytes, as: key, in: storage)
                keys.append(key)
                contents[key] = bytes
            }
            let first = keys[0], bytes = try #require(contents[first])
            let objectKey = try storage.objectKey(first)
            #expect(objectKey == "chat/blobs/sha256/\(first.hash.prefix(2))/\(first.hash.dropFirst(2).prefix(2))/\(first.hash)")

            // The same bytes again: a HEAD, no PUT. Different bytes under the key (a truncated object): put again.
            try await put(bytes, as: first, in: storage)
            #expect(bucket.requests(containing: "\"PUT /media/\(objectKey) ") == 1)
            try await client.put(objectKey, bytes: Array(bytes.prefix(10)))
            try await put(bytes, as: first, in: storage)
            #expect(try await storage.size(of: first) == bytes.count)

            #expect(try await read(first, nil, from: storage) == bytes)
            #expect(try await read(first, 100..<110, from: storage) == Array(bytes[100..<110]))
            #expect(try await read(first, 5..<5, from: storage).isEmpty)

            let thumbnail = try BlobKey(thumbnailOf: first.hash, size: "fit320", type: "image/png")
            try await storage.put(thumbnail, bytes: [1, 2, 3])
            #expect(try await read(thumbnail, nil, from: storage) == [1, 2, 3])

            // A stray: an object where no key belongs.
            try await client.put("chat/blobs/sha256/00/00/\(first.hash)", bytes: [9])
            let pages = try await storage.list(.blobs, prefix: "").collect()
            #expect(pages.count >= 3, "2 keys a page: \(pages.count) pages")
            let listed = pages.flatMap { $0 }
            #expect(Set(listed.compactMap(\.key)) == Set(keys))
            #expect(listed.filter { $0.key == nil }.map(\.location) == ["chat/blobs/sha256/00/00/\(first.hash)"])
            #expect(listed.allSatisfy { $0.modifiedAt > 0 })
            #expect(try await storage.list(.blobs, prefix: String(first.hash.prefix(6))).collect().flatMap { $0 }.compactMap(\.key) == [first])
            #expect(try await storage.list(.thumbnails, prefix: "").collect().flatMap { $0 }.map(\.key) == [thumbnail])
            #expect(try await storage.list(.setAside, prefix: "").collect().flatMap { $0 }.isEmpty)

            let objects = listed.filter { $0.key == first }
            #expect(await storage.sha256(of: objects) { _ in }.map { try? $0.get() } == [first.hash])

            // Quarantine: copied aside, then gone from serving and listing.
            try await storage.quarantine(try #require(objects.first))
            #expect(try await storage.size(of: first) == nil)
            #expect(try await bucket.keys().contains { $0.hasPrefix("chat/quarantine/\(first.hash).") })
            await #expect(throws: BlobStorageError.notFound(first)) { _ = try await read(first, nil, from: storage) }
            #expect(await storage.sha256(of: objects) { _ in }.map { try? $0.get() } == [String?.none])

            // A removal batch sets nothing aside: the catalog records pending deletions instead.
            let removal = storage.beginRemoval(.delete)
            try removal.setAside(keys[1])
            await removal.undo()
            await removal.finish()
            #expect(try await storage.size(of: keys[1]) == contents[keys[1]]?.count)
        }
    }

    @Test("an unreachable store is a typed error that keeps its cause, and says what to check")
    func unreachable() async throws {
        let bucket = try await TestBucket.start()
        let port = bucket.port
        bucket.stop()
        let configuration = S3Configuration(location: S3Location(bucket: "media", prefix: "chat",
                                                                 endpoint: S3Location.Endpoint(secure: false, host: "127.0.0.1", port: port)),
                                            credentials: testCredentials,
                                            retry: RetryPolicy(attempts: 2, initialBackoff: .milliseconds(10), maxBackoff: .milliseconds(20)),
                                            connectTimeout: .seconds(30))
        let client = S3Client(configuration: configuration)
        let storage = S3BlobStorage(client: client)
        let key = try BlobKey(blob: String(repeating: "ab", count: 32))
        do {
            _ = try await storage.size(of: key)
            Issue.record("the store is down")
        } catch {
            guard case .unavailable(let failure) = error, case ObjectStorageError.unavailable(_, _, let attempts, _) = failure.cause else {
                Issue.record("unexpected \(error)")
                try await client.shutdown()
                return
            }
            #expect(attempts == 2)
            #expect(error.description.contains("check that it runs"))
            #expect(!error.description.contains("testing"))
        }
        try await client.shutdown()
    }
}
