import ChatProtocol
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// Where blobs' bytes and their thumbnails are kept, by content hash: the local content-addressed directory
/// (`LocalBlobStorage`) or, later, an object store. Everything is async and streams: nothing here needs the whole
/// object in memory or a path on a local disk.
public protocol BlobStorage: Sendable {
    /// Puts a finished local file (written and closed by the caller) under `key`, durably, replacing what is there.
    /// The file is consumed.
    func put(_ key: BlobKey, temporaryFile path: String) async throws(BlobStorageError)
    /// Puts small bytes (a thumbnail) under `key`, atomically and durably.
    func put(_ key: BlobKey, bytes: [UInt8]) async throws(BlobStorageError)
    /// The object's size, or nil when there is none (an HTTP HEAD).
    func size(of key: BlobKey) async throws(BlobStorageError) -> Int?
    /// Reads `range` of the object (all of it when nil) as a stream of buffers of bounded size, for as long as
    /// `body` runs. Throws `BlobStorageError.notFound` when there is no object.
    func read<T: Sendable>(_ key: BlobKey, range: Range<Int>?, _ body: (BlobByteStream) async throws -> T) async throws -> T
    /// Opens `range` of the object (all of it when nil) for an answer whose head goes out before its body: the
    /// object's size is known now, its bytes are read as `OpenedObject.bytes` is iterated (once). One request for an
    /// object store, where `size(of:)` then `read` are two. Nil when there is no object. Dropping the bytes unread
    /// releases what was opened.
    func open(_ key: BlobKey, range: Range<Int>?) async throws(BlobStorageError) -> OpenedObject?
    /// What `area` holds whose hash starts with `prefix` (everything for ""), page by page, in no particular order.
    /// Objects that are not where their name says (strays) are listed too, with no key.
    func list(_ area: BlobArea, prefix: String) -> BlobListing
    /// Deletes a listed object now.
    func remove(_ object: StoredObject) async throws(BlobStorageError)
    /// Moves a listed object where an operator can inspect it, out of serving and listing.
    func quarantine(_ object: StoredObject) async throws(BlobStorageError)
    /// Puts back under `key` an object an interrupted removal left set aside (`BlobArea.setAside`).
    func restore(_ object: StoredObject, as key: BlobKey) async throws(BlobStorageError)
    /// Starts taking objects out of serving in a way that can be undone until it is finished.
    func beginRemoval(_ disposal: BlobDisposal) -> any BlobRemovalBatch
    /// SHA-256 (lowercase hex) of each listed object, in order: nil for one that is gone since it was listed.
    /// `progress` gets the bytes hashed so far. `BlobDigests.streaming` reads through `read`; a storage may do better.
    func sha256(of objects: [StoredObject], progress: @escaping @Sendable (Int64) -> Void) async -> [Result<String?, BlobStorageError>]
    /// Whether objects leave only after the catalog's transaction commits (an object store: deleting cannot be part
    /// of a database transaction). Removals then record pending deletions (`PendingDeletion` in ChatStore), and an
    /// upload holds its hash before putting bytes. False for the local directory, whose set-aside is a rename
    /// inside the transaction.
    var deletesAfterCommit: Bool { get }
    /// Writes left unfinished in the storage itself and started before `cutoff` (epoch milliseconds): an object
    /// store's multipart uploads whose abort failed (the store was down) or whose writer died. The local directory
    /// has none (its temporaries are the spool's).
    func unfinishedWrites(startedBefore cutoff: Int64) async throws(BlobStorageError) -> [UnfinishedWrite]
    /// Discards an unfinished write and what it stored so far; one that is gone already is not an error.
    func discard(_ write: UnfinishedWrite) async throws(BlobStorageError)
}

extension BlobStorage {
    public var deletesAfterCommit: Bool { false }
    public func unfinishedWrites(startedBefore cutoff: Int64) async throws(BlobStorageError) -> [UnfinishedWrite] { [] }
    public func discard(_ write: UnfinishedWrite) async throws(BlobStorageError) {}
}

/// An object opened for reading (`BlobStorage.open`).
public struct OpenedObject: Sendable {
    /// The whole object's size.
    public var size: Int
    /// The bytes `bytes` carries: the range asked for, cut to the object's end.
    public var range: Range<Int>
    public var bytes: BlobByteStream

    public init(size: Int, range: Range<Int>, bytes: BlobByteStream) {
        self.size = size
        self.range = range
        self.bytes = bytes
    }
}

/// A write the storage holds unfinished (a multipart upload), found by `unfinishedWrites`.
public struct UnfinishedWrite: Sendable, Equatable {
    /// The key being written, when the location is one.
    public var key: BlobKey?
    /// Where it writes, for reports.
    public var location: String
    /// The storage's id of the write (the multipart upload id).
    public var id: String
    /// When it started, epoch milliseconds (0 when the storage does not say).
    public var startedAt: Int64

    public init(key: BlobKey?, location: String, id: String, startedAt: Int64) {
        self.key = key
        self.location = location
        self.id = id
        self.startedAt = startedAt
    }
}

/// Objects taken out of serving around a catalog transaction (see `MediaCatalog.removeBlobs`): `setAside` inside it,
/// then `finish` once it committed or `undo` when it did not.
public protocol BlobRemovalBatch: Sendable {
    /// Moves an object out of serving. Called inside the catalog's write transaction, on its thread, so it is
    /// synchronous and quick; an object that is not there is not an error.
    func setAside(_ key: BlobKey) throws(BlobStorageError)
    /// Whether the object is there now, from inside the same transaction.
    func contains(_ key: BlobKey) -> Bool
    /// The transaction did not commit: puts everything back.
    func undo() async
    /// The transaction committed: deleted objects go for good; quarantined ones stay for an operator.
    func finish() async
}

/// What a removal does with the objects it takes out of serving.
public enum BlobDisposal: Sendable {
    /// Deleted once the catalog's transaction has committed (prune).
    case delete
    /// Kept aside for an operator to inspect (verify --repair).
    case quarantine
}

/// The parts of a storage a listing walks.
public enum BlobArea: Sendable {
    case blobs
    case thumbnails
    /// Objects a removal set aside and has not finished with (left by a crash; `media gc` deals with them).
    case setAside
}

/// The name of an object: a blob by its SHA-256, or one of its thumbnails. Only valid names can be made, so a key
/// never reaches outside the storage.
public struct BlobKey: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        case blob
        case thumbnail(size: String, type: String)
    }

    /// 64 lowercase hexadecimal digits.
    public let hash: String
    public let kind: Kind

    public init(blob hash: String) throws(BlobStorageError) {
        try self.init(hash: hash, kind: .blob)
    }

    /// `size` is a thumbnail size name such as "fit320"; `type` its MIME type (PNG or JPEG).
    public init(thumbnailOf hash: String, size: String, type: String) throws(BlobStorageError) {
        guard (1...16).contains(size.utf8.count), size.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x7A).contains($0) }) else {
            throw .invalidKey("\"\(size.prefix(80))\" is not a thumbnail size name")
        }
        try self.init(hash: hash, kind: .thumbnail(size: size, type: type))
    }

    private init(hash: String, kind: Kind) throws(BlobStorageError) {
        guard Hashes.isValidSHA256(hash), hash == Hashes.normalized(hash) else {
            throw .invalidKey("\"\(hash.prefix(80))\" is not a SHA-256 in lowercase hexadecimal")
        }
        self.hash = hash
        self.kind = kind
    }

    public var description: String {
        switch kind {
        case .blob: hash
        case .thumbnail(let size, _): "\(hash)-\(size)"
        }
    }
}

/// An object found by a listing.
public struct StoredObject: Sendable, Equatable {
    /// Its key when its name makes one and it is where that key belongs; nil for a stray.
    public var key: BlobKey?
    /// Where it is, for reports and for the storage (a path for a local directory).
    public var location: String
    /// Last component of the location.
    public var name: String
    public var size: Int64
    /// Last modification, epoch milliseconds.
    public var modifiedAt: Int64

    public init(key: BlobKey?, location: String, name: String, size: Int64, modifiedAt: Int64) {
        self.key = key
        self.location = location
        self.name = name
        self.size = size
        self.modifiedAt = modifiedAt
    }
}

/// Why a storage operation failed. Each case says what to check.
public enum BlobStorageError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A name that is not a valid key (not a lowercase SHA-256, or a bad thumbnail size).
    case invalidKey(String)
    /// No object under this key.
    case notFound(BlobKey)
    /// A file operation failed (`errno`); ENOSPC and friends mean the disk is full.
    case io(operation: String, path: String, errno: Int32)
    /// The object store did not answer, kept failing, or refused (its error is the cause; it says what to check).
    case unavailable(BlobStoreFailure)

    public var description: String {
        switch self {
        case .invalidKey(let reason): "invalid media key: \(reason)"
        case .notFound(let key): "no stored object \(key)"
        case .io(let operation, let path, let code):
            "could not \(operation) \(path): \(String(cString: strerror(code))). Check the media directory's permissions and free space."
        case .unavailable(let failure): failure.description
        }
    }
}

/// An object store's failure, kept whole as the cause of `BlobStorageError.unavailable`. Equal when described alike
/// (the causes are not `Equatable`); the description never carries credentials.
public struct BlobStoreFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public let cause: any Error & Sendable

    public init(_ cause: any Error & Sendable) {
        self.cause = cause
    }

    public var description: String { "\(cause)" }

    public static func == (lhs: BlobStoreFailure, rhs: BlobStoreFailure) -> Bool {
        lhs.description == rhs.description
    }
}
