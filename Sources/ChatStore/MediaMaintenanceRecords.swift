import Foundation

/// Which present blobs a prune may remove (all conditions hold): the SQL of `media prune`'s criteria, evaluated when
/// choosing candidates and again inside the removing transaction.
public struct BlobSelection: Sendable, Equatable {
    /// Last referenced before this time (epoch milliseconds): the grace period, or an older age when asked.
    public var referencedBefore: Int64
    /// No message attaches it.
    public var unreferenced: Bool
    /// Larger than this many bytes.
    public var largerThan: Int64?
    /// MIME type, exact ("application/pdf") or a family ("image/*").
    public var type: String?

    public init(referencedBefore: Int64, unreferenced: Bool = false, largerThan: Int64? = nil, type: String? = nil) {
        self.referencedBefore = referencedBefore
        self.unreferenced = unreferenced
        self.largerThan = largerThan
        self.type = type
    }

    /// How `type` is matched in SQL.
    public enum TypeMatch: Sendable, Equatable {
        case exact(String)
        /// A `LIKE` pattern with `\` as its escape character.
        case like(String)
    }

    /// `type` as SQL matches it: a family ("image/*") becomes a prefix pattern with its own `%`, `_` and `\` escaped.
    public var typeMatch: TypeMatch? {
        guard let type else { return nil }
        guard type.hasSuffix("/*") else { return .exact(type) }
        let family = String(type.dropLast()).replacingOccurrences(of: "\\", with: "\\\\")
            .replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_")
        return .like(family + "%")
    }
}

/// What `removeBlobs` checks again inside its transaction before it removes a blob.
public enum BlobRecheck: Sendable, Equatable {
    /// Still present and still matching the selection (a touch since the selection keeps the blob).
    case matches(BlobSelection)
    /// Still present (a concurrent prune may have taken it already).
    case present
}

/// One blob a prune removes (or, in a dry run, would remove).
public struct PruneCandidate: Sendable, Codable, Equatable {
    public var hash: String
    public var type: String
    public var size: Int64
    public var lastReferencedAt: Int64
    public var attachments: Int

    public init(hash: String, type: String, size: Int64, lastReferencedAt: Int64, attachments: Int) {
        self.hash = hash
        self.type = type
        self.size = size
        self.lastReferencedAt = lastReferencedAt
        self.attachments = attachments
    }

    /// The first of `candidates` (least recently referenced first) whose removal brings `presentBytes` under
    /// `maxTotal`; all of them when there is no maximum.
    public static func needed(_ candidates: [PruneCandidate], presentBytes: Int64, maxTotal: Int64?) -> [PruneCandidate] {
        guard let maxTotal else { return candidates }
        var excess = presentBytes - maxTotal
        var needed: [PruneCandidate] = []
        for candidate in candidates where excess > 0 {
            needed.append(candidate)
            excess -= candidate.size
        }
        return needed
    }
}

/// Every blob row and every upload still receiving, from one read (`media gc`).
public struct MediaInventory: Sendable {
    public var blobs: [BlobRecord]
    public var receivingUploads: [UploadRecord]

    public init(blobs: [BlobRecord], receivingUploads: [UploadRecord]) {
        self.blobs = blobs
        self.receivingUploads = receivingUploads
    }
}

/// What the media store holds: `chat-admin media stats`. The catalog fills in the figures of rows; the files' come
/// from a listing of the storage.
public struct MediaStats: Sendable, Codable, Equatable {
    public struct TypeTotal: Sendable, Codable, Equatable {
        public var type: String
        public var blobs: Int
        public var bytes: Int64

        public init(type: String, blobs: Int, bytes: Int64) {
            self.type = type
            self.blobs = blobs
            self.bytes = bytes
        }
    }

    public struct UserTotal: Sendable, Codable, Equatable {
        public var user: String
        /// Finished uploads.
        public var uploads: Int
        /// Bytes those uploads sent (before deduplication).
        public var bytesUploaded: Int64
        /// Distinct blobs they stored or reused.
        public var distinctBlobs: Int
        /// Bytes of those distinct blobs still present.
        public var bytesPresent: Int64

        public init(user: String, uploads: Int, bytesUploaded: Int64, distinctBlobs: Int, bytesPresent: Int64) {
            self.user = user
            self.uploads = uploads
            self.bytesUploaded = bytesUploaded
            self.distinctBlobs = distinctBlobs
            self.bytesPresent = bytesPresent
        }
    }

    /// Blobs whose bytes are in the store, and their bytes according to the database.
    public var blobs: Int
    public var bytesStored: Int64
    /// Blobs removed by prune or quarantined by verify --repair (their metadata stays).
    public var pruned: Int
    public var quarantined: Int
    /// Files and bytes actually under `blobs/` and `thumbs/` (the two differ from the database only when verify has
    /// something to report).
    public var blobFiles: Int
    public var blobFileBytes: Int64
    public var thumbnails: Int
    public var thumbnailBytes: Int64
    /// Attachments pointing at present blobs, and the bytes they would take without deduplication.
    public var attachments: Int
    public var bytesReferenced: Int64
    /// Bytes not stored thanks to deduplication: for each referenced blob, its size times (references - 1).
    public var dedupSavings: Int64
    /// Present blobs with no attachment (uploaded but never sent, or whose messages are gone).
    public var unreferencedBlobs: Int
    public var unreferencedBytes: Int64
    /// Creation times (epoch ms) of the oldest and newest present blob.
    public var oldest: Int64?
    public var newest: Int64?
    public var byType: [TypeTotal]
    /// Filled when asked for (`--by-user`).
    public var byUser: [UserTotal]?

    /// The figures of rows, as a catalog has them; the files' start at zero. `dedupSavings` is `bytesReferenced`
    /// minus the bytes of the distinct present blobs that are referenced (`referencedStored`).
    public init(blobs: Int, bytesStored: Int64, pruned: Int, quarantined: Int, attachments: Int, bytesReferenced: Int64,
                referencedStored: Int64, unreferencedBlobs: Int, unreferencedBytes: Int64, oldest: Int64?, newest: Int64?,
                byType: [TypeTotal], byUser: [UserTotal]?) {
        self.blobs = blobs
        self.bytesStored = bytesStored
        self.pruned = pruned
        self.quarantined = quarantined
        blobFiles = 0
        blobFileBytes = 0
        thumbnails = 0
        thumbnailBytes = 0
        self.attachments = attachments
        self.bytesReferenced = bytesReferenced
        dedupSavings = bytesReferenced - referencedStored
        self.unreferencedBlobs = unreferencedBlobs
        self.unreferencedBytes = unreferencedBytes
        self.oldest = oldest
        self.newest = newest
        self.byType = byType
        self.byUser = byUser
    }
}

/// Why `removeBlobs` removed nothing: the database refused, or the caller's set-aside failed (its error kept).
public enum BlobRemovalFailure: Error, Sendable, CustomStringConvertible {
    case database(StoreError)
    case setAside(any Error)

    public var description: String {
        switch self {
        case .database(let error): error.description
        case .setAside(let error): "\(error)"
        }
    }
}
