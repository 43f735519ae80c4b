import Foundation
import MediaStore
import NIOCore
import Testing

@Suite("LocalBlobStorage: the content-addressed directory behind the BlobStorage protocol")
struct BlobStorageTests {
    /// A fresh store in a temporary directory.
    private func makeStorage() throws -> (LocalBlobStorage, String) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("blobs-\(UUID().uuidString)").path
        let storage = LocalBlobStorage(layout: MediaLayout(directory: directory))
        try storage.prepare()
        return (storage, directory)
    }

    /// Puts `bytes` as a blob through a temporary file, as an upload does.
    private func put(_ bytes: [UInt8], in storage: LocalBlobStorage) async throws -> BlobKey {
        let key = try BlobKey(blob: sha256Hex(Data(bytes)))
        let temporary = storage.layout.temporaryPath(upload: "u\(UUID().uuidString)")
        try Data(bytes).write(to: URL(fileURLWithPath: temporary))
        try await storage.put(key, temporaryFile: temporary)
        #expect(!FileManager.default.fileExists(atPath: temporary), "the temporary file is consumed")
        return key
    }

    private func read(_ key: BlobKey, _ range: Range<Int>?, from storage: LocalBlobStorage) async throws -> (bytes: [UInt8], buffers: Int) {
        try await storage.read(key, range: range) { chunks in
            var bytes: [UInt8] = []
            var buffers = 0
            for try await chunk in chunks {
                bytes += chunk.readableBytesView
                buffers += 1
            }
            return (bytes, buffers)
        }
    }

    @Test("open for serving: the size before the bytes, a range cut to the end, bounded buffers; nil when missing")
    func openForServing() async throws {
        let (storage, directory) = try makeStorage()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let bytes = randomBytes(300_000, seed: 9)
        let key = try await put(bytes, in: storage)
        func collect(_ opened: OpenedObject) async throws -> (bytes: [UInt8], largest: Int) {
            var collected: [UInt8] = []
            var largest = 0
            for try await chunk in opened.bytes {
                collected += chunk.readableBytesView
                largest = max(largest, chunk.readableBytes)
            }
            return (collected, largest)
        }
        let whole = try #require(try await storage.open(key, range: nil))
        #expect(whole.size == bytes.count && whole.range == 0..<bytes.count)
        let read = try await collect(whole)
        #expect(read.bytes == bytes)
        #expect(read.largest <= 128 * 1024, "read a chunk at a time")
        let tail = try #require(try await storage.open(key, range: 299_990..<300_100))
        #expect(tail.size == bytes.count && tail.range == 299_990..<300_000)
        #expect(try await collect(tail).bytes == Array(bytes[299_990...]))
        // Opened and never read (a client gone before the body): nothing to do, the file closes with the last reference.
        _ = try await storage.open(key, range: 0..<10)
        let missing = try BlobKey(blob: String(repeating: "0", count: 64))
        #expect(try await storage.open(missing, range: nil) == nil)
    }

    @Test("put from a temporary file, size, whole and ranged reads in bounded buffers, list, remove")
    func putReadListRemove() async throws {
        let (storage, directory) = try makeStorage()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let bytes = randomBytes(300_000, seed: 7)
        let key = try await put(bytes, in: storage)
        #expect(FileManager.default.fileExists(atPath: storage.layout.blobPath(key.hash)))
        #expect(try await storage.size(of: key) == bytes.count)

        let whole = try await read(key, nil, from: storage)
        #expect(whole.bytes == bytes)
        #expect(whole.buffers >= 3, "read in buffers of at most 128 KiB, not at once: \(whole.buffers)")
        #expect(try await read(key, 1000..<1010, from: storage).bytes == Array(bytes[1000..<1010]))
        #expect(try await read(key, 299_990..<300_000, from: storage).bytes == Array(bytes[299_990...]))

        let thumbnail = try BlobKey(thumbnailOf: key.hash, size: "fit320", type: "image/png")
        try await storage.put(thumbnail, bytes: [1, 2, 3])
        #expect(try await read(thumbnail, nil, from: storage).bytes == [1, 2, 3])

        let blobs = try await storage.list(.blobs, prefix: "").collect().flatMap { $0 }
        #expect(blobs.map(\.key) == [key] && blobs.first?.size == Int64(bytes.count))
        #expect(try await storage.list(.blobs, prefix: String(key.hash.prefix(6))).collect().flatMap { $0 }.count == 1)
        #expect(try await storage.list(.blobs, prefix: key.hash.hasPrefix("0") ? "1" : "0").collect().flatMap { $0 }.isEmpty)
        #expect(try await storage.list(.thumbnails, prefix: "").collect().flatMap { $0 }.map(\.key) == [thumbnail])

        let digests = await storage.sha256(of: blobs) { _ in }
        #expect(try digests.map { try $0.get() } == [key.hash])
        #expect(await BlobDigests.streaming(blobs, in: storage) { _ in }.map { try? $0.get() } == [key.hash])

        try await storage.remove(blobs[0])
        #expect(try await storage.size(of: key) == nil)
        await #expect(throws: BlobStorageError.notFound(key)) { _ = try await read(key, nil, from: storage) }
        #expect(await storage.sha256(of: blobs) { _ in }.map { try? $0.get() } == [String?.none])
    }

    @Test("odd keys are refused with a typed error; strays are listed without a key")
    func oddInputs() async throws {
        for bad in ["", "abc", String(repeating: "g", count: 64), String(repeating: "A", count: 64), "../" + String(repeating: "a", count: 61)] {
            #expect(throws: BlobStorageError.self) { try BlobKey(blob: bad) }
        }
        let hash = String(repeating: "ab", count: 32)
        #expect(throws: BlobStorageError.self) { try BlobKey(thumbnailOf: hash, size: "../x", type: "image/png") }
        #expect(throws: BlobStorageError.self) { try BlobKey(thumbnailOf: hash, size: "", type: "image/png") }
        #expect(throws: Never.self) { try BlobKey(thumbnailOf: hash, size: "crop96", type: "image/jpeg") }

        let (storage, directory) = try makeStorage()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // Misplaced (wrong fan-out directory) and misnamed files are strays: listed, but with no key.
        let misplaced = storage.layout.blobsDirectory + "/00/00/" + hash
        let misnamed = storage.layout.blobsDirectory + "/ab/ab/not-a-hash"
        for path in [misplaced, misnamed] {
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data("x".utf8).write(to: URL(fileURLWithPath: path))
        }
        let listed = try await storage.list(.blobs, prefix: "").collect().flatMap { $0 }
        #expect(Set(listed.map(\.location)) == [misplaced, misnamed])
        #expect(listed.allSatisfy { $0.key == nil })
        #expect(try await storage.size(of: try BlobKey(blob: hash)) == nil)
        await #expect(throws: BlobStorageError.self) { try await storage.put(try BlobKey(blob: hash), temporaryFile: directory + "/none") }
    }

    @Test("a removal sets aside, then undoes or finishes; quarantine keeps the bytes for an operator")
    func removal() async throws {
        let (storage, directory) = try makeStorage()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let key = try await put(randomBytes(5_000, seed: 1), in: storage)
        let missing = try BlobKey(blob: String(repeating: "cd", count: 32))

        let undone = storage.beginRemoval(.delete)
        try undone.setAside(key)
        try undone.setAside(missing)  // not there: not an error
        #expect(!undone.contains(key))
        #expect(try await storage.list(.setAside, prefix: "").collect().flatMap { $0 }.map(\.key) == [key])
        await undone.undo()
        #expect(try await storage.size(of: key) == 5_000)

        let deleted = storage.beginRemoval(.delete)
        try deleted.setAside(key)
        await deleted.finish()
        #expect(try await storage.size(of: key) == nil)
        #expect(try await storage.list(.setAside, prefix: "").collect().flatMap { $0 }.isEmpty)

        let again = try await put(randomBytes(5_000, seed: 1), in: storage)
        let quarantined = storage.beginRemoval(.quarantine)
        try quarantined.setAside(again)
        await quarantined.finish()
        #expect(try await storage.size(of: again) == nil)
        #expect(try FileManager.default.contentsOfDirectory(atPath: storage.layout.quarantineDirectory).count == 1)

        // What a crash left set aside can be put back under its key.
        let restored = try await put(randomBytes(5_000, seed: 1), in: storage)
        let crashed = storage.beginRemoval(.delete)
        try crashed.setAside(restored)
        let leftovers = try await storage.list(.setAside, prefix: "").collect().flatMap { $0 }
        try await storage.restore(try #require(leftovers.first), as: restored)
        #expect(try await storage.size(of: restored) == 5_000)
    }
}
