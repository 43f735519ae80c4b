/// A deletion of a blob's objects that waits for the commit of the transaction that decided it: how an object store
/// (where deleting cannot be part of a database transaction) is kept consistent with the catalog.
///
/// The invariant: an object is never deleted while a committed present row, or an upload about to record one,
/// needs it. Four rules, each checked inside a write transaction that holds the hash's lock (SQLite serialises all
/// write transactions; PostgreSQL takes a transaction-level advisory lock per hash):
/// 1. A remover marks the blob pruned or quarantined and records the pending deletion in one transaction.
/// 2. A deleter deletes objects only under a *claim* on the row, granted only while the blob is not present and no
///    receiving upload holds the hash; it releases (deletes) the row once the objects are gone.
/// 3. An upload that is going to put bytes (the blob is not present, or its object is missing) first *holds* the
///    hash (`uploads.storing_hash`), which is refused while a claim is live; so its put comes after any deletion
///    that was claimed before it, and no claim is granted after it until the upload is done or gone.
/// 4. Marking a blob present (`completeUpload`) deletes its unclaimed pending row and is refused while a claim is
///    live (`StoreError.removalInProgress`).
/// A present row therefore never coexists with a live claim, and an object an upload put is deleted only by a claim
/// granted after that upload ended without recording it.
public struct PendingDeletion: Sendable, Equatable {
    public var hash: String
    public var disposal: PendingDisposal
    /// Whether the blob's thumbnails go too (prune without --keep-thumbnails, verify --repair, gc).
    public var thumbnails: Bool
    public var createdAt: Int64
    public var claimedAt: Int64?

    public init(hash: String, disposal: PendingDisposal, thumbnails: Bool, createdAt: Int64, claimedAt: Int64? = nil) {
        self.hash = hash
        self.disposal = disposal
        self.thumbnails = thumbnails
        self.createdAt = createdAt
        self.claimedAt = claimedAt
    }

    /// How long a claim stands: a deleter starts no request under a claim older than half of this, and a claim
    /// older than this is abandoned (its deleter crashed) and may be taken over. The other half covers the longest
    /// request a deleter may have started (the object store client's request timeout times its attempts: 15
    /// minutes with its defaults).
    public static let lease: Duration = .seconds(3600)
}

/// What a deferred deletion does with the blob's object.
public enum PendingDisposal: String, Sendable, Codable {
    /// Deleted (prune, gc).
    case delete
    /// Copied to the quarantine area for an operator, then deleted (verify --repair).
    case quarantine
}
