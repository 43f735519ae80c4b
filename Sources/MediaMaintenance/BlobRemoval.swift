import ChatStore
import MediaStore

/// Takes blobs' bytes out of the store while the server runs: the remover's half of the deletion protocol described
/// on `MediaCatalog`. For each batch of blobs, inside one catalog write transaction: re-check that each is still
/// eligible (criteria evaluated against the committed state, so a reference made a moment ago keeps it), set its
/// bytes and thumbnails aside in the storage, and mark the row. The server's touch-before-trust waits for that
/// transaction, then sees the blob as absent and stores its own copy; a touch that came first makes the re-check fail.
///
/// Set-aside bytes are put back when the transaction does not commit, and deleted (prune) or kept for an operator
/// (quarantine) once it has; `media gc` deals with what a crash left set aside.
struct BlobRemoval: Sendable {
    let catalog: any MediaCatalog
    let storage: any BlobStorage

    /// What must still hold of a blob's bytes, checked inside the transaction as well.
    enum BytesCondition: Sendable {
        case any
        /// Still missing (an upload may have put the bytes back since they were found missing).
        case missing
    }

    /// Blobs per write transaction: short enough that the server's writes wait only milliseconds.
    static let batchSize = 200

    /// Removes those of `hashes` that still pass `recheck` and `bytes`. Returns them.
    func remove(_ hashes: [String], to state: BlobState, disposal: BlobDisposal, keepThumbnails: Bool, recheck: BlobRecheck,
                bytes: BytesCondition = .any, progress: (Int) -> Void = { _ in }) async throws(MaintenanceError) -> [String] {
        var removed: [String] = []
        var start = 0
        // Emptying a batch's trash overlaps the next batch's transaction (at most one batch behind), so the unlinks
        // cost no wall time on a machine with a second core.
        var emptying: Task<Void, Never>?
        let deferred: PendingDisposal? = storage.deletesAfterCommit ? (disposal == .quarantine ? .quarantine : .delete) : nil
        while start < hashes.count {
            var batch = Array(hashes[start..<min(start + Self.batchSize, hashes.count)])
            start += batch.count
            if deferred != nil, case .missing = bytes {
                // The storage cannot say inside the transaction whether bytes came back: ask just before it.
                var stillMissing: [String] = []
                for hash in batch {
                    guard let key = try? BlobKey(blob: hash) else { continue }
                    do {
                        if try await storage.size(of: key) == nil { stillMissing.append(hash) }
                    } catch {
                        throw .storage(error)
                    }
                }
                batch = stillMissing
            }
            let removal = storage.beginRemoval(disposal)
            do {
                removed += try await catalog.removeBlobs(batch, marking: state, keepThumbnails: keepThumbnails, recheck: recheck,
                                                         deferring: deferred, at: epochMilliseconds()) { blob in
                    let key = try BlobKey(blob: blob.hash)
                    if case .missing = bytes, removal.contains(key) { return false }
                    try removal.setAside(key)
                    if !keepThumbnails {
                        for thumbnail in blob.thumbnails {
                            // A size that makes no key was never stored under one.
                            guard let key = try? BlobKey(thumbnailOf: blob.hash, size: thumbnail.size, type: thumbnail.type) else { continue }
                            try removal.setAside(key)
                        }
                    }
                    return true
                }
            } catch {
                await removal.undo()
                throw .wrap(error)
            }
            await emptying?.value
            emptying = Task { await removal.finish() }
            progress(start)
        }
        await emptying?.value
        if deferred != nil {
            // After the commit: objects go under claims (see PendingDeletion). What cannot go now stays pending for gc.
            _ = try await PendingDeletions(catalog: catalog, storage: storage).run(removed)
        }
        return removed
    }
}
