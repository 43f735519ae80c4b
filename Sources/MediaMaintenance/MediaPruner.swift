import ChatProtocol
import ChatStore
import GRDB
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

    /// The SQL condition (on `blobs b`) that a blob must meet, now and again inside the deleting transaction.
    func condition(now: Int64) -> (sql: String, arguments: StatementArguments) {
        let referenceCutoff = now - max(grace, olderThan ?? .zero).inMilliseconds
        var sql = "b.state = 'present' AND b.last_referenced_at < ?"
        var arguments: StatementArguments = [referenceCutoff]
        if unreferenced {
            sql += " AND NOT EXISTS (SELECT 1 FROM attachments a WHERE a.blob_hash = b.hash)"
        }
        if let largerThan {
            sql += " AND b.size > ?"
            arguments += [largerThan]
        }
        if let type {
            if type.hasSuffix("/*") {
                sql += " AND b.mime_type LIKE ? ESCAPE '\\'"
                let family = String(type.dropLast()).replacingOccurrences(of: "\\", with: "\\\\")
                    .replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_")
                arguments += [family + "%"]
            } else {
                sql += " AND b.mime_type = ?"
                arguments += [type]
            }
        }
        return (sql, arguments)
    }
}

/// One blob a prune removes (or, in a dry run, would remove).
public struct PruneCandidate: Sendable, Codable, Equatable {
    public var hash: String
    public var type: String
    public var size: Int64
    public var lastReferencedAt: Int64
    public var attachments: Int
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
}

/// `chat-admin media prune`: removes blobs' bytes under the deletion protocol; metadata stays and attachments show
/// as expired.
public struct MediaPruner: Sendable {
    let database: ChatDatabase
    let layout: MediaLayout

    public init(database: ChatDatabase, layout: MediaLayout) {
        self.database = database
        self.layout = layout
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
        let (condition, arguments) = criteria.condition(now: now)
        let (candidates, totalBefore): ([PruneCandidate], Int64)
        do {
            (candidates, totalBefore) = try await database.pool.read { db in
                let total = try Int64.fetchOne(db, sql: "SELECT coalesce(sum(size), 0) FROM blobs WHERE state = 'present'") ?? 0
                var matching = try Row.fetchAll(db, sql: """
                    SELECT b.hash, b.mime_type, b.size, b.last_referenced_at,
                           (SELECT count(*) FROM attachments a WHERE a.blob_hash = b.hash) AS refs
                    FROM blobs b WHERE \(condition) ORDER BY b.last_referenced_at, b.hash
                    """, arguments: arguments).map {
                        PruneCandidate(hash: $0["hash"], type: $0["mime_type"], size: $0["size"],
                                       lastReferencedAt: $0["last_referenced_at"], attachments: $0["refs"])
                    }
                if let maxTotal = criteria.maxTotal {
                    var excess = total - maxTotal
                    var needed: [PruneCandidate] = []
                    for candidate in matching where excess > 0 {
                        needed.append(candidate)
                        excess -= candidate.size
                    }
                    matching = needed
                }
                return (matching, total)
            }
        } catch {
            throw .wrap(error)
        }
        var report = PruneReport(dryRun: dryRun, candidates: candidates, removed: [], bytes: candidates.reduce(0) { $0 + $1.size },
                                 totalBefore: totalBefore, totalAfter: totalBefore - candidates.reduce(0) { $0 + $1.size },
                                 seconds: 0)
        if !dryRun {
            let removal = BlobRemoval(database: database, layout: layout)
            let total = candidates.count
            report.removed = try await removal.remove(candidates.map(\.hash), to: .pruned, disposal: .delete,
                                                      keepThumbnails: criteria.keepThumbnails) { db, hash in
                // The same criteria against the committed state: a touch since the selection keeps the blob.
                try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM blobs b WHERE b.hash = ? AND \(condition)"),
                                  arguments: [hash] + arguments) ?? false
            } progress: { progress($0, total) }
            let removed = Set(report.removed)
            report.bytes = candidates.filter { removed.contains($0.hash) }.reduce(0) { $0 + $1.size }
            report.totalAfter = totalBefore - report.bytes
        }
        report.seconds = (ContinuousClock.now - started).inSeconds
        return report
    }
}
