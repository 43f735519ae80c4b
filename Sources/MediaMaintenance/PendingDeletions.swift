import ChatProtocol
import ChatStore
import MediaStore

/// Carries out deletions that wait for their transaction's commit (a storage with `deletesAfterCommit`): claims the
/// pending rows, deletes (or quarantines) the objects, and releases the rows, following the rules on
/// `PendingDeletion`. Used right after a prune or a verify --repair commits, and by `media gc` for whatever an
/// interrupted one left.
public struct PendingDeletions: Sendable {
    let catalog: any MediaCatalog
    let storage: any BlobStorage

    public init(catalog: any MediaCatalog, storage: any BlobStorage) {
        self.catalog = catalog
        self.storage = storage
    }

    /// Rows claimed per transaction.
    static let batchSize = 100

    /// What a run did: hashes whose objects went, and those left pending (a failure, or claimed elsewhere or held by
    /// an upload in progress: gc finishes them later).
    public struct Outcome: Sendable, Equatable {
        public var finished: [String] = []
        public var failed: [String] = []
    }

    /// Carries out the pending deletions of `hashes`, or every claimable one when nil.
    public func run(_ hashes: [String]?) async throws(MaintenanceError) -> Outcome {
        let claim = "c" + (0..<4).map { _ in String(UInt32.random(in: .min ... .max), radix: 16) }.joined()
        var outcome = Outcome()
        var remaining = hashes.map { $0[...] }
        while true {
            let wanted = remaining.map { Array($0.prefix(Self.batchSize)) }
            if let wanted, wanted.isEmpty { break }
            remaining = remaining.map { $0.dropFirst(Self.batchSize) }
            let claimedAt = ContinuousClock.now
            let now = epochMilliseconds()
            let claimed: [PendingDeletion]
            do {
                claimed = try await catalog.claimPendingDeletions(wanted, limit: Self.batchSize, claim: claim,
                                                                  staleBefore: now - PendingDeletion.lease.inMilliseconds, at: now)
            } catch {
                throw .wrap(error)
            }
            if wanted == nil && claimed.isEmpty { break }
            var finished: [String] = []
            // Past half its lease, a claim may be taken over before a request started now ends: start none then.
            let deadline = claimedAt + PendingDeletion.lease / 2
            for deletion in claimed {
                do {
                    try await carryOut(deletion, before: deadline)
                    finished.append(deletion.hash)
                } catch {
                    outcome.failed.append(deletion.hash)
                }
            }
            do {
                try await catalog.releasePendingDeletions(finished, claim: claim)
                try await catalog.unclaimPendingDeletions(claimed.map(\.hash).filter { !finished.contains($0) }, claim: claim)
            } catch {
                throw .wrap(error)
            }
            outcome.finished += finished
            // Without a list, whatever failed would be claimed again at once: leave it for the next run.
            if wanted == nil && finished.isEmpty { break }
        }
        return outcome
    }

    /// Deletes the blob's thumbnails (unless kept) and the blob (or moves it to quarantine). The row goes only once
    /// all of them are gone, so a failure leaves it for another run.
    private func carryOut(_ deletion: PendingDeletion, before deadline: ContinuousClock.Instant) async throws {
        func request() throws {
            guard ContinuousClock.now < deadline else { throw ClaimExpired() }
        }
        let blob = try BlobKey(blob: deletion.hash)
        if deletion.thumbnails {
            try request()
            for try await page in storage.list(.thumbnails, prefix: deletion.hash) {
                for object in page where object.key?.hash == deletion.hash {
                    try request()
                    try await storage.remove(object)
                }
            }
        }
        try request()
        for try await page in storage.list(.blobs, prefix: deletion.hash) {
            for object in page where object.key == blob {
                try request()
                switch deletion.disposal {
                case .delete: try await storage.remove(object)
                case .quarantine: try await storage.quarantine(object)
                }
            }
        }
    }
}

/// A claim too old to start another request under (see `PendingDeletion.lease`).
private struct ClaimExpired: Error {}
