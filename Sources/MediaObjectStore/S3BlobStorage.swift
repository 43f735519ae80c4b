import Foundation
import MediaStore
import NIOCore
import ObjectStorage
import _NIOFileSystem

/// Blobs and thumbnails in an S3-compatible bucket, under the local directory's layout: `PREFIX/blobs/sha256/ab/cd/<hash>`,
/// `PREFIX/thumbs/ab/cd/<hash>/<size>.<ext>`, `PREFIX/quarantine/...`. Every node of a cluster serves every file.
///
/// Deleting an object cannot be part of a database transaction, so removals here set nothing aside: the catalog
/// records a pending deletion in the removing transaction, and `PendingDeletions` (MediaMaintenance) deletes the
/// objects after the commit under a claim (`deletesAfterCommit`; the argument is on `PendingDeletion` in ChatStore).
///
/// Requests retry per the client's `RetryPolicy`; a store that stays unreachable, or refuses, is
/// `BlobStorageError.unavailable` with the client's error as its cause.
public struct S3BlobStorage: BlobStorage {
    public let client: S3Client
    var location: S3Location { client.configuration.location }

    public init(client: S3Client) {
        self.client = client
    }

    public var deletesAfterCommit: Bool { true }

    /// The object key of `key`.
    public func objectKey(_ key: BlobKey) throws(BlobStorageError) -> String {
        do {
            switch key.kind {
            case .blob: return try location.blobKey(sha256: key.hash)
            case .thumbnail(let size, let type):
                return try location.thumbnailKey(sha256: key.hash, size: size, fileExtension: Self.fileExtension(type))
            }
        } catch {
            throw .invalidKey(error.description)
        }
    }

    static func fileExtension(_ type: String) -> String { type == "image/png" ? "png" : "jpg" }

    static func failure(_ error: ObjectStorageError) -> BlobStorageError {
        if case .invalidKey(let reason) = error { return .invalidKey(reason) }
        return .unavailable(BlobStoreFailure(error))
    }

    // MARK: Writing

    /// Content addressed: an object of the same size under the key already holds these bytes, so the put is skipped.
    /// (Safe under the deletion protocol: the uploader holds the hash first, so no deletion is running or can start.)
    public func put(_ key: BlobKey, temporaryFile path: String) async throws(BlobStorageError) {
        let objectKey = try self.objectKey(key)
        let size: Int64
        do {
            guard let info = try await FileSystem.shared.info(forFileAt: FilePath(path)) else {
                throw BlobStorageError.io(operation: "read", path: path, errno: ENOENT)
            }
            size = info.size
        } catch let error as BlobStorageError {
            throw error
        } catch {
            throw .io(operation: "stat", path: path, errno: EIO)
        }
        do {
            if try await client.head(objectKey)?.size != Int(size) {
                // A blob's key is its SHA-256: the store verifies the bytes against it.
                try await client.put(objectKey, fromFile: path, sha256: key.kind == .blob ? key.hash : nil)
            }
        } catch {
            throw Self.failure(error)
        }
        // Consumed only once stored: a failed put leaves the file for a resume.
        _ = try? await FileSystem.shared.removeItem(at: FilePath(path))
    }

    public func put(_ key: BlobKey, bytes: [UInt8]) async throws(BlobStorageError) {
        let objectKey = try self.objectKey(key)
        var type: String?
        if case .thumbnail(_, let mime) = key.kind { type = mime }
        do { try await client.put(objectKey, bytes: bytes, contentType: type) } catch { throw Self.failure(error) }
    }

    // MARK: Reading

    public func size(of key: BlobKey) async throws(BlobStorageError) -> Int? {
        let objectKey = try self.objectKey(key)
        do { return try await client.head(objectKey)?.size } catch { throw Self.failure(error) }
    }

    /// Streams the object as it arrives: the HTTP client reads from the store only as fast as `body` consumes, so
    /// memory stays bounded whatever the size and however slow either side is.
    public func read<T: Sendable>(_ key: BlobKey, range: Range<Int>?, _ body: (BlobByteStream) async throws -> T) async throws -> T {
        let objectKey = try self.objectKey(key)
        if let range, range.isEmpty { return try await body(BlobByteStream([])) }
        let download: ObjectDownload?
        do {
            download = try await client.get(objectKey, range: range.map { $0.lowerBound...($0.upperBound - 1) })
        } catch {
            throw Self.failure(error)
        }
        guard let download else { throw BlobStorageError.notFound(key) }
        return try await body(BlobByteStream(download.body))
    }

    /// One GET: its answer says whether the object exists and its size (Content-Length, or Content-Range's total).
    public func open(_ key: BlobKey, range: Range<Int>?) async throws(BlobStorageError) -> OpenedObject? {
        let objectKey = try self.objectKey(key)
        if let range, range.isEmpty {
            guard let size = try await size(of: key) else { return nil }
            return OpenedObject(size: size, range: range.clamped(to: 0..<size), bytes: BlobByteStream([]))
        }
        do {
            guard let download = try await client.get(objectKey, range: range.map { $0.lowerBound...($0.upperBound - 1) }) else {
                return nil
            }
            let served = download.range.map { $0.lowerBound..<($0.upperBound + 1) } ?? 0..<download.contentLength
            return OpenedObject(size: download.info.size, range: served, bytes: BlobByteStream(download.body))
        } catch .rejected(_, let response) where response.code == "InvalidRange" {
            // The object is shorter than the range's start (shorter than the catalog says): nothing to send.
            guard let size = try await size(of: key) else { return nil }
            return OpenedObject(size: size, range: size..<size, bytes: BlobByteStream([]))
        } catch {
            throw Self.failure(error)
        }
    }

    // MARK: Listing

    public func list(_ area: BlobArea, prefix: String) -> BlobListing {
        let root: String
        switch area {
        case .blobs: root = location.blobsPrefix
        case .thumbnails: root = location.thumbnailsPrefix
        // Nothing is ever set aside in a bucket: removals are pending deletion rows in the catalog.
        case .setAside: return BlobListing([])
        }
        // The fan-out narrows a long enough prefix (`ab/cd/<prefix>`), as in the local directory.
        let bytes = Array(prefix.utf8)
        let listed = bytes.count >= 4
            ? root + "\(prefix.prefix(2))/\(prefix.dropFirst(2).prefix(2))/\(prefix)"
            : root + (bytes.count >= 2 ? "\(prefix.prefix(2))" : "")
        let location = self.location
        return BlobListing(ListingPages(client: client, prefix: listed) { summary in
            let object = Self.storedObject(summary, area: area, location: location)
            return (object.key?.hash ?? object.name).hasPrefix(prefix) || prefix.isEmpty ? object : nil
        })
    }

    /// A listed object: its key when its name makes one and it is where that key belongs.
    static func storedObject(_ summary: ObjectSummary, area: BlobArea, location: S3Location) -> StoredObject {
        let parts = summary.key.split(separator: "/", omittingEmptySubsequences: false)
        let name = parts.last.map(String.init) ?? summary.key
        var key: BlobKey?
        switch area {
        case .blobs:
            if let blob = try? BlobKey(blob: name), (try? location.blobKey(sha256: name)) == summary.key { key = blob }
        case .thumbnails:
            if parts.count >= 2, let dot = name.lastIndex(of: ".") {
                let hash = String(parts[parts.count - 2])
                let size = String(name[..<dot]), ext = name[name.index(after: dot)...]
                let type = ext == "png" ? "image/png" : ext == "jpg" ? "image/jpeg" : ""
                if !type.isEmpty, let thumbnail = try? BlobKey(thumbnailOf: hash, size: size, type: type),
                   (try? location.thumbnailKey(sha256: hash, size: size, fileExtension: String(ext))) == summary.key {
                    key = thumbnail
                }
            }
        case .setAside:
            break
        }
        return StoredObject(key: key, location: summary.key, name: name, size: Int64(summary.size),
                            modifiedAt: summary.lastModified.flatMap(Self.epochMilliseconds) ?? 0)
    }

    /// S3's `LastModified` (ISO 8601, with or without fractional seconds) in epoch milliseconds.
    static func epochMilliseconds(_ text: String) -> Int64? {
        let date = (try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text))
            ?? (try? Date.ISO8601FormatStyle().parse(text))
        return date.map { Int64($0.timeIntervalSince1970 * 1000) }
    }

    // MARK: Removing

    public func remove(_ object: StoredObject) async throws(BlobStorageError) {
        do { try await client.delete(object.location) } catch { throw Self.failure(error) }
    }

    /// Copies the object to `PREFIX/quarantine/` (on the store's side), then deletes it.
    public func quarantine(_ object: StoredObject) async throws(BlobStorageError) {
        let name = object.key?.kind == .blob ? object.name : "stray-\(object.name)"
        let target = location.key("quarantine/\(name).\(Int64(Date().timeIntervalSince1970 * 1000))")
        do {
            guard try await client.copy(from: object.location, to: target) else { return }
            try await client.delete(object.location)
        } catch {
            throw Self.failure(error)
        }
    }

    public func restore(_ object: StoredObject, as key: BlobKey) async throws(BlobStorageError) {
        let destination = try objectKey(key)
        do {
            guard try await client.copy(from: object.location, to: destination) else { return }
            try await client.delete(object.location)
        } catch {
            throw Self.failure(error)
        }
    }

    /// Multipart uploads under `blobs/` and `thumbs/` started before `cutoff`. One whose start the store does not
    /// say counts as old: `media gc` spares the uploads of hashes a server holds, whatever their age.
    public func unfinishedWrites(startedBefore cutoff: Int64) async throws(BlobStorageError) -> [UnfinishedWrite] {
        var writes: [UnfinishedWrite] = []
        for (area, prefix) in [(BlobArea.blobs, location.blobsPrefix), (BlobArea.thumbnails, location.thumbnailsPrefix)] {
            let uploads: [PendingUpload]
            do { uploads = try await client.pendingMultipartUploads(prefix: prefix) } catch { throw Self.failure(error) }
            for upload in uploads {
                let started = upload.initiated.flatMap(Self.epochMilliseconds) ?? 0
                guard started < cutoff else { continue }
                let key = Self.storedObject(ObjectSummary(key: upload.key, size: 0), area: area, location: location).key
                writes.append(UnfinishedWrite(key: key, location: upload.key, id: upload.uploadID, startedAt: started))
            }
        }
        return writes
    }

    public func discard(_ write: UnfinishedWrite) async throws(BlobStorageError) {
        do { try await client.abortMultipartUpload(write.location, uploadID: write.id) } catch { throw Self.failure(error) }
    }

    public func beginRemoval(_ disposal: BlobDisposal) -> any BlobRemovalBatch {
        DeferredRemovalBatch()
    }

    public func sha256(of objects: [StoredObject], progress: @escaping @Sendable (Int64) -> Void) async -> [Result<String?, BlobStorageError>] {
        await BlobDigests.streaming(objects, in: self, progress: progress)
    }
}

/// A removal from a bucket: nothing is moved inside the transaction (the catalog records pending deletions instead,
/// see `S3BlobStorage`), so there is nothing to undo, and finishing is `PendingDeletions`' work after the commit.
struct DeferredRemovalBatch: BlobRemovalBatch {
    func setAside(_ key: BlobKey) throws(BlobStorageError) {}
    /// Unknown inside the transaction (it would need a request); callers check before it (`BlobRemoval`).
    func contains(_ key: BlobKey) -> Bool { false }
    func undo() async {}
    func finish() async {}
}

/// A bucket listing, one ListObjectsV2 page per element, mapped to stored objects.
struct ListingPages: AsyncSequence, Sendable {
    typealias Element = [StoredObject]
    let client: S3Client
    let prefix: String
    let map: @Sendable (ObjectSummary) -> StoredObject?

    struct AsyncIterator: AsyncIteratorProtocol {
        let pages: ListingPages
        var token: String?
        var finished = false

        mutating func next() async throws -> [StoredObject]? {
            guard !finished else { return nil }
            let page: ListPage
            do {
                page = try await pages.client.listPage(prefix: pages.prefix, continuationToken: token)
            } catch {
                throw S3BlobStorage.failure(error)
            }
            token = page.nextContinuationToken
            finished = token == nil
            return page.objects.compactMap(pages.map)
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(pages: self) }
}

extension S3Configuration {
    /// The store of `--media-store URL` (`chat-server`, `chat-admin`): the location parsed from `text` and the
    /// credentials from the environment or the shared credentials file, never from the URL.
    public static func mediaStore(_ text: String, environment: [String: String] = ProcessInfo.processInfo.environment)
        throws(ObjectStorageError) -> S3Configuration {
        S3Configuration(location: try S3Location(parsing: text), credentials: try Credentials.load(environment: environment))
    }
}
