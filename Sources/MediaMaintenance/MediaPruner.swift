import ChatProtocol
import ChatStore
import MediaStore

/// Which blobs `media prune` removes. Criteria combine with AND; `maxTotal` then evicts, least recently referenced
/// first, only as many of the matching blobs as it takes to bring the store under the total.
public struct PruneCriteria: Sendable {
    /// Last referenced (uploaded, re-uploaded or attached) more than this long ago.
    public var olderThan: Duration?
    /// No message attaches it (an upload that was never sent, or whose use is over).
    public var unreferenced = false
    /// Larger than this many bytes.
    public var largerThan: Int64?
    /// MIME type, exact ("application/pdf") or a family ("image/*").
    public var type: String?
    /// Evict until the present blobs total at most this many bytes.
    public var maxTotal: Int64?
    /// Leave thumbnails, so expired attachments keep their previews.
    public var keepThumbnails = false
    /// Never touch a blob referenced more recently than this: it covers the moment between the server touching a
    /// blob and the message row that references it (see `MediaCatalog`). At least a minute.
    public var grace: Duration = .seconds(900)

    public init() {}

    public static let minimumGrace: Duration = .seconds(60)

    var hasCriterion: Bool { olderThan != nil || unreferenced || largerThan != nil || type != nil || maxTotal != nil }

    /// The catalog's selection for these criteria at `now`.
    func selection(now: Int64) -> BlobSelection {
        BlobSelection(referencedBefore: now - max(grace, olderThan ?? .zero).inMilliseconds, unreferenced: unreferenced,
                      largerThan: largerThan, type: type)
    }
}

public struct PruneReport: Sendable, Codable, Equatable {
    public var dryRun: Bool
    /// What matched the criteria (and, with `maxTotal`, was needed to get under it), oldest reference first.
    public var candidates: [PruneCandidate]
    /// Hashes actually removed (empty in a dry run). Fewer than the candidates when the server referenced some of
    /// them while the prune ran.
    public var removed: [String]
    /// Bytes the candidates take (dry run) or that were freed.
    public var bytes: Int64
    /// Present bytes before and after.
    public var totalBefore: Int64
    public var totalAfter: Int64
    public var seconds: Double
    /// An object store: deletions that could not be carried out now (the store failed, or an upload of the same bytes
    /// holds them) and wait for `media gc`.
    public var pendingDeletions = 0
}

/// `chat-admin media prune`: removes blobs' bytes under the deletion protocol; metadata stays and attachments show
/// as expired.
public struct MediaPruner: Sendable {
    let catalog: any MediaCatalog
    let storage: any BlobStorage

    public init(catalog: any MediaCatalog, storage: any BlobStorage) {
        self.catalog = catalog
        self.storage = storage
    }

    public func prune(_ criteria: PruneCriteria, dryRun: Bool, progress: (Int, Int) -> Void = { _, _ in })
        async throws(MaintenanceError) -> PruneReport {
        guard criteria.hasCriterion else {
            throw .invalidRequest("say what to prune: --older-than, --unreferenced, --larger-than, --type or --max-total")
        }
        guard criteria.grace >= PruneCriteria.minimumGrace else {
            throw .invalidRequest("the grace period must be at least a minute: uploads in flight rely on it")
        }
        let started = ContinuousClock.now
        let now = epochMilliseconds()
        let selection = criteria.selection(now: now)
        let (candidates, totalBefore): ([PruneCandidate], Int64)
        do {
            (candidates, totalBefore) = try await catalog.pruneCandidates(selection, maxTotal: criteria.maxTotal)
        } catch {
            throw .wrap(error)
        }
        var report = PruneReport(dryRun: dryRun, candidates: candidates, removed: [], bytes: candidates.reduce(0) { $0 + $1.size },
                                 totalBefore: totalBefore, totalAfter: totalBefore - candidates.reduce(0) { $0 + $1.size },
                                 seconds: 0)
        if !dryRun {
            let removal = BlobRemoval(catalog: catalog, storage: storage)
            let total = candidates.count
            // The same criteria against the committed state: a touch since the selection keeps the blob.
            report.removed = try await removal.remove(candidates.map(\.hash), to: .pruned, disposal: .delete,
                                                      keepThumbnails: criteria.keepThumbnails, recheck: .matches(selection)) {
                progress($0, total)
            }
            let removed = Set(report.removed)
            report.bytes = candidates.filter { removed.contains($0.hash) }.reduce(0) { $0 + $1.size }
            report.totalAfter = totalBefore - report.bytes
            if storage.deletesAfterCommit {
                do { report.pendingDeletions = try await catalog.pendingDeletions().count } catch { throw .wrap(error) }
            }
        }
        report.seconds = (ContinuousClock.now - started).inSeconds
        return report
    }
}
