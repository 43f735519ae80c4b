import ChatProtocol

/// Media metadata: blobs, uploads and who may see what. The bytes themselves are the media store's business.
///
/// Removing bytes while the server runs (prune, quarantine) is safe because of one rule on each side:
/// - The server never relies on existing bytes without first *touching* the blob in a write transaction
///   (`touchPresentBlob`, `finishedUpload`): `last_referenced_at = now`, only where `state = 'present'`. A touch that
///   changes no row means "not there": the server stores its own copy of the bytes and marks the blob present again.
/// - A remover (`chat-admin media prune`, `verify --repair`) re-checks its criteria, including "not referenced within
///   the grace period", inside its write transaction, and moves the files away before that transaction commits
///   (`removeBlobs`).
/// SQLite serialises write transactions, so either the touch comes first (the re-check sees a fresh reference and
/// keeps the blob) or the removal does (the touch finds nothing and the server writes the bytes again). The grace
/// period, at least a minute, covers the milliseconds between a touch and the message row that then references the
/// blob.
public protocol MediaCatalog: Sendable {
    // MARK: Uploads

    func insertUpload(_ upload: UploadRecord) async throws(StoreError)
    /// Marks activity (a dropped connection starts the resume window from here).
    func touchUpload(id: String, at now: Int64) async throws(StoreError)
    func receivingUpload(id: String) async throws(StoreError) -> UploadRecord?
    /// Every upload still receiving, for start-up cleanup and expiry.
    func receivingUploads() async throws(StoreError) -> [UploadRecord]
    func deleteReceivingUpload(id: String) async throws(StoreError)
    /// Bytes of `user`'s finished uploads created at or after `since` (the daily allowance).
    func bytesUploaded(by user: String, since: Int64) async throws(StoreError) -> Int
    /// Records a finished upload: the blob row (first time) or its last reference time, and the upload as done,
    /// in one transaction. Returns whether the blob row existed before.
    @discardableResult
    func completeUpload(id: String, blob: BlobRecord, nameMismatch: Bool, at now: Int64) async throws(StoreError) -> Bool

    // MARK: Blobs

    /// The blob if its bytes are present, after marking it referenced now (see the type's documentation: call this
    /// before relying on existing bytes). Nil when there is no row or the bytes were removed.
    func touchPresentBlob(hash: String, at now: Int64) async throws(StoreError) -> BlobRecord?
    func blob(hash: String) async throws(StoreError) -> BlobRecord?
    /// A finished upload of `user`, by upload id or by hash (their latest upload of those bytes), as an attachment.
    /// A present blob is touched (it is about to be referenced by a message); one whose bytes were removed comes
    /// back with `expired == true` and must not be attached.
    func finishedUpload(of user: String, reference: AttachmentReference, at now: Int64) async throws(StoreError) -> Attachment?
    /// The blob and a display name for it if `user` may fetch it: it is attached to a message of the user's own
    /// conversation (customers) or to any message (agents). Nil otherwise, including when it does not exist.
    func accessibleBlob(hash: String, user: String, role: Role) async throws(StoreError) -> (blob: BlobRecord, name: String)?

    // MARK: Maintenance

    /// Every blob row and every upload still receiving, from one snapshot (`media gc`).
    func inventory() async throws(StoreError) -> MediaInventory
    /// Size of every present blob by hash (`media verify`).
    func presentBlobSizes() async throws(StoreError) -> [String: Int64]
    /// Present blobs matching `selection`, least recently referenced first, cut to those needed to bring the present
    /// bytes under `maxTotal` when given; and the present bytes now.
    func pruneCandidates(_ selection: BlobSelection, maxTotal: Int64?) async throws(StoreError)
        -> (candidates: [PruneCandidate], presentBytes: Int64)
    /// The remover's half of the deletion protocol, for each of `hashes` in one write transaction: re-checks
    /// `recheck` against the committed state, hands the blob to `setAside` (which moves its bytes out of serving
    /// and returns false to keep it after all), and marks the row `state`. Returns the hashes removed. When it
    /// throws nothing was marked, and the caller puts back what `setAside` moved.
    /// With `deferring`, each removed blob also gets a pending deletion row in the same transaction (a storage that
    /// deletes after the commit: see `PendingDeletion`).
    func removeBlobs(_ hashes: [String], marking state: BlobState, keepThumbnails: Bool, recheck: BlobRecheck,
                     deferring: PendingDisposal?, at now: Int64,
                     setAside: @escaping @Sendable (BlobRecord) throws -> Bool) async throws(BlobRemovalFailure) -> [String]
    /// `media strip-metadata`'s move, in one write transaction: when `old` is still present and last referenced
    /// before `referencedBefore` (a touch since the selection keeps it: the grace rule of `removeBlobs`), records
    /// `new` as present with `metadataRemoved` (rule 4 of `PendingDeletion` applies, as in `completeUpload`; an
    /// existing row keeps its later reference time), points every attachment and finished upload of `old` at it,
    /// and deletes the receiving upload `releasing` that held `new`'s hash. With `new.hash == old`, only
    /// `metadataRemoved` is recorded. Returns the attachments moved, or nil when `old` was not eligible (nothing
    /// changed but the release). `old` itself stays present: it is removed afterwards through `removeBlobs`.
    func replaceBlob(_ old: String, with new: BlobRecord, referencedBefore: Int64, releasing hold: String?,
                     at now: Int64) async throws(StoreError) -> Int?

    // MARK: Deferred deletions (see `PendingDeletion`)

    /// The uploader's hold: upload `id` (still receiving) is about to put the bytes of `hash` into the store, so no
    /// deletion of `hash` may be claimed until the upload is done or gone. False, and nothing held, while a claim on
    /// `hash` younger than `staleBefore` is live: the caller waits and asks again. An older claim is abandoned
    /// (its deleter stops before then, see `PendingDeletion.lease`) and is dropped.
    func holdBlob(hash: String, upload id: String, staleBefore: Int64, at now: Int64) async throws(StoreError) -> Bool
    /// Records pending deletions of `hashes` whose blob is not present (or has no row): objects that no row accounts
    /// for (`media gc`). Returns the hashes recorded or already pending.
    func recordPendingDeletions(_ hashes: [String], disposal: PendingDisposal, at now: Int64) async throws(StoreError) -> [String]
    /// Claims pending deletions for `claim` (of `hashes`, or any when nil; at most `limit`): those unclaimed or
    /// claimed before `staleBefore`, whose blob is not present and that no receiving upload holds. Rows whose blob
    /// is present again are dropped on the way. The claimant deletes the objects, then calls `releasePendingDeletions`.
    func claimPendingDeletions(_ hashes: [String]?, limit: Int, claim: String, staleBefore: Int64, at now: Int64)
        async throws(StoreError) -> [PendingDeletion]
    /// Deletes the rows of `hashes` that `claim` still holds: their objects are gone.
    func releasePendingDeletions(_ hashes: [String], claim: String) async throws(StoreError)
    /// Gives up `claim` on `hashes` (their deletion failed): they wait, unclaimed, for another run.
    func unclaimPendingDeletions(_ hashes: [String], claim: String) async throws(StoreError)
    /// Every pending deletion (`media gc`, `media stats`, tests).
    func pendingDeletions() async throws(StoreError) -> [PendingDeletion]

    /// Deletes the records of uploads still receiving whose last activity is before `cutoff` (`media gc`).
    func deleteStaleUploads(ids: [String], updatedBefore cutoff: Int64) async throws(StoreError)
    /// The figures of `media stats` that come from rows (the file counts and bytes are left at zero).
    func stats(byUser: Bool) async throws(StoreError) -> MediaStats
}

extension MediaCatalog {
    /// A removal whose storage deletes inside the transaction (no pending deletion rows).
    public func removeBlobs(_ hashes: [String], marking state: BlobState, keepThumbnails: Bool, recheck: BlobRecheck, at now: Int64,
                            setAside: @escaping @Sendable (BlobRecord) throws -> Bool) async throws(BlobRemovalFailure) -> [String] {
        try await removeBlobs(hashes, marking: state, keepThumbnails: keepThumbnails, recheck: recheck, deferring: nil, at: now,
                              setAside: setAside)
    }

    public func touchUpload(id: String) async throws(StoreError) {
        try await touchUpload(id: id, at: epochMilliseconds())
    }

    @discardableResult
    public func completeUpload(id: String, blob: BlobRecord, nameMismatch: Bool) async throws(StoreError) -> Bool {
        try await completeUpload(id: id, blob: blob, nameMismatch: nameMismatch, at: epochMilliseconds())
    }

    public func touchPresentBlob(hash: String) async throws(StoreError) -> BlobRecord? {
        try await touchPresentBlob(hash: hash, at: epochMilliseconds())
    }

    public func finishedUpload(of user: String, reference: AttachmentReference) async throws(StoreError) -> Attachment? {
        try await finishedUpload(of: user, reference: reference, at: epochMilliseconds())
    }
}
