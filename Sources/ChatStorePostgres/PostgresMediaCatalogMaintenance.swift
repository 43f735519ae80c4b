import ChatStore
import Logging
import PostgresNIO
import Synchronization

/// The queries of `chat-admin media` (stats, verify, prune, gc) on PostgreSQL.
extension PostgresMediaCatalog {
    public func inventory() async throws(StoreError) -> MediaInventory {
        try await snapshot("reading the media inventory") { connection, logger in
            MediaInventory(blobs: try await connection.rows("SELECT \(unescaped: BlobRecord.postgresColumns) FROM blobs b", logger: logger)
                            .map(BlobRecord.init(postgres:)),
                           receivingUploads: try await Self.receivingUploads(on: connection, logger: logger))
        }
    }

    public func presentBlobSizes() async throws(StoreError) -> [String: Int64] {
        let rows = try await all("reading blob sizes", "SELECT hash, size FROM blobs WHERE state = 'present'") { row in
            (try row.get("hash", String.self), try row.get("size", Int64.self))
        }
        return Dictionary(rows, uniquingKeysWith: { first, _ in first })
    }

    public func pruneCandidates(_ selection: BlobSelection, maxTotal: Int64?) async throws(StoreError)
        -> (candidates: [PruneCandidate], presentBytes: Int64) {
        var sql = PostgresQuery.StringInterpolation(literalCapacity: 0, interpolationCount: 0)
        sql.appendLiteral("SELECT b.hash, b.mime_type, b.size, b.last_referenced_at, "
                          + "(SELECT count(*) FROM attachments a WHERE a.blob_hash = b.hash) AS refs FROM blobs b WHERE ")
        BlobRecheck.matches(selection).appendCondition(to: &sql)
        sql.appendLiteral(" ORDER BY b.last_referenced_at, b.hash COLLATE \"C\"")
        let query = PostgresQuery(stringInterpolation: sql)
        return try await snapshot("choosing blobs to prune") { connection, logger in
            let total = try await connection.rows("SELECT coalesce(sum(size), 0)::bigint AS bytes FROM blobs WHERE state = 'present'",
                                                  logger: logger).first?.get("bytes", Int64.self) ?? 0
            let matching = try await connection.rows(query, logger: logger).map { row in
                PruneCandidate(hash: try row.get("hash"), type: try row.get("mime_type"), size: try row.get("size"),
                               lastReferencedAt: try row.get("last_referenced_at"), attachments: try row.int("refs"))
            }
            return (PruneCandidate.needed(matching, presentBytes: total, maxTotal: maxTotal), total)
        }
    }

    public func removeBlobs(_ hashes: [String], marking state: BlobState, keepThumbnails: Bool, recheck: BlobRecheck,
                            deferring: PendingDisposal?, at now: Int64, setAside: @escaping @Sendable (BlobRecord) throws -> Bool) async throws(BlobRemovalFailure) -> [String] {
        var sql = PostgresQuery.StringInterpolation(literalCapacity: 0, interpolationCount: 0)
        sql.appendLiteral("SELECT \(BlobRecord.postgresColumns) FROM blobs b WHERE b.hash = ANY(")
        sql.appendInterpolation(hashes)
        sql.appendLiteral(") AND ")
        recheck.appendCondition(to: &sql)
        let eligible = PostgresQuery(stringInterpolation: sql)
        let logger = database.logger
        let failure = SetAsideFailure()
        do {
            return try await database.withTransaction("removing blobs") { connection in
                // Lock first, all rows in one order (removers on two nodes cannot deadlock), and re-check after: the
                // re-check is a later statement, so it sees every touch that committed while this waited. All the
                // waiting is here, before anything is set aside, so a deadlock retry never repeats a set-aside.
                if deferring != nil { try await Self.lockHashes(hashes, on: connection, logger: logger) }
                try await connection.run("SELECT hash FROM blobs WHERE hash = ANY(\(hashes)) ORDER BY hash FOR UPDATE", logger: logger)
                var blobs: [String: BlobRecord] = [:]
                for row in try await connection.rows(eligible, logger: logger) {
                    let blob = try BlobRecord(postgres: row)
                    blobs[blob.hash] = blob
                }
                var done: [String] = []
                for hash in hashes {
                    guard let blob = blobs.removeValue(forKey: hash) else { continue }
                    do {
                        guard try setAside(blob) else { continue }
                    } catch {
                        failure.error.withLock { $0 = error }
                        throw error
                    }
                    done.append(hash)
                }
                if !done.isEmpty {
                    try await connection.run("""
                        UPDATE blobs SET state = \(state.rawValue), removed_at = \(now),
                            thumbnails = CASE WHEN \(keepThumbnails) THEN thumbnails ELSE '[]' END
                        WHERE hash = ANY(\(done))
                        """, logger: logger)
                    if let deferring {
                        try await connection.run("""
                            INSERT INTO blob_deletions (hash, disposal, thumbnails, created_at)
                            SELECT h, \(deferring.rawValue), \(!keepThumbnails), \(now) FROM unnest(\(done)::text[]) AS h
                            ON CONFLICT (hash) DO NOTHING
                            """, logger: logger)
                    }
                }
                return done
            }
        } catch {
            if let setAsideError = failure.error.withLock({ $0 }) { throw .setAside(setAsideError) }
            throw .database(error)
        }
    }

    public func deleteStaleUploads(ids: [String], updatedBefore cutoff: Int64) async throws(StoreError) {
        try await run("deleting stale uploads", """
            DELETE FROM uploads WHERE id = ANY(\(ids)) AND state = 'receiving' AND updated_at < \(cutoff)
            """)
    }

    /// Aggregate SQL only, no per-blob work.
    public func stats(byUser: Bool) async throws(StoreError) -> MediaStats {
        try await snapshot("reading media statistics") { connection, logger in
            func one(_ query: PostgresQuery) async throws -> PostgresRandomAccessRow? {
                try await connection.rows(query, logger: logger).first
            }
            let present = try await one("""
                SELECT count(*) AS n, coalesce(sum(size), 0)::bigint AS bytes, min(created_at) AS oldest, max(created_at) AS newest
                FROM blobs WHERE state = 'present'
                """)
            var states: [String: Int] = [:]
            for row in try await connection.rows("SELECT state, count(*) AS n FROM blobs GROUP BY state", logger: logger) {
                states[try row.get("state")] = try row.int("n")
            }
            let references = try await one("""
                SELECT count(*) AS n, coalesce(sum(b.size), 0)::bigint AS bytes
                FROM attachments a JOIN blobs b ON b.hash = a.blob_hash WHERE b.state = 'present'
                """)
            let referencedStored = try await one("""
                SELECT coalesce(sum(size), 0)::bigint AS bytes FROM blobs b
                WHERE state = 'present' AND EXISTS (SELECT 1 FROM attachments a WHERE a.blob_hash = b.hash)
                """)
            let unreferenced = try await one("""
                SELECT count(*) AS n, coalesce(sum(size), 0)::bigint AS bytes FROM blobs b
                WHERE state = 'present' AND NOT EXISTS (SELECT 1 FROM attachments a WHERE a.blob_hash = b.hash)
                """)
            let byType = try await connection.rows("""
                SELECT mime_type, count(*) AS n, sum(size)::bigint AS bytes FROM blobs WHERE state = 'present'
                GROUP BY mime_type ORDER BY bytes DESC, mime_type COLLATE "C"
                """, logger: logger).map { row in
                    MediaStats.TypeTotal(type: try row.get("mime_type"), blobs: try row.int("n"), bytes: try row.get("bytes"))
                }
            return MediaStats(
                blobs: try present?.int("n") ?? 0, bytesStored: try present?.get("bytes") ?? 0,
                pruned: states[BlobState.pruned.rawValue] ?? 0, quarantined: states[BlobState.quarantined.rawValue] ?? 0,
                attachments: try references?.int("n") ?? 0, bytesReferenced: try references?.get("bytes") ?? 0,
                referencedStored: try referencedStored?.get("bytes") ?? 0,
                unreferencedBlobs: try unreferenced?.int("n") ?? 0, unreferencedBytes: try unreferenced?.get("bytes") ?? 0,
                oldest: try present?.get("oldest", Int64?.self) ?? nil, newest: try present?.get("newest", Int64?.self) ?? nil, byType: byType,
                byUser: byUser ? try await Self.userTotals(on: connection, logger: logger) : nil)
        }
    }

    private static func userTotals(on connection: PostgresConnection, logger: Logger) async throws -> [MediaStats.UserTotal] {
        // Two grouped scans joined in Swift, as on SQLite, where a correlated subquery per user was quadratic.
        var present: [String: (blobs: Int, bytes: Int64)] = [:]
        for row in try await connection.rows("""
            SELECT ub.username, count(*) AS distinct_blobs,
                   coalesce(sum(CASE WHEN b.state = 'present' THEN b.size ELSE 0 END), 0)::bigint AS present
            FROM (SELECT DISTINCT username, blob_hash FROM uploads WHERE state = 'done') ub
            JOIN blobs b ON b.hash = ub.blob_hash GROUP BY ub.username
            """, logger: logger) {
            present[try row.get("username")] = (try row.int("distinct_blobs"), try row.get("present"))
        }
        return try await connection.rows("""
            SELECT username, count(*) AS uploads, sum(size)::bigint AS uploaded FROM uploads WHERE state = 'done'
            GROUP BY username ORDER BY uploaded DESC, username COLLATE "C"
            """, logger: logger).map { row in
                let user: String = try row.get("username")
                return MediaStats.UserTotal(user: user, uploads: try row.int("uploads"), bytesUploaded: try row.get("uploaded"),
                                            distinctBlobs: present[user]?.blobs ?? 0, bytesPresent: present[user]?.bytes ?? 0)
            }
    }
}

/// The set-aside closure's error, kept aside: the transaction turns whatever its body throws into a `StoreError`.
private final class SetAsideFailure: Sendable {
    let error = Mutex<(any Error)?>(nil)
}

extension BlobRecheck {
    /// The condition (on `blobs b`) a blob must meet, as in SQLite's catalog: when choosing candidates and again inside
    /// the removing transaction.
    func appendCondition(to sql: inout PostgresQuery.StringInterpolation) {
        guard case .matches(let selection) = self else {
            sql.appendLiteral("b.state = 'present'")
            return
        }
        sql.appendLiteral("b.state = 'present' AND b.last_referenced_at < ")
        sql.appendInterpolation(selection.referencedBefore)
        if selection.unreferenced {
            sql.appendLiteral(" AND NOT EXISTS (SELECT 1 FROM attachments a WHERE a.blob_hash = b.hash)")
        }
        if let largerThan = selection.largerThan {
            sql.appendLiteral(" AND b.size > ")
            sql.appendInterpolation(largerThan)
        }
        switch selection.typeMatch {
        case .exact(let type):
            sql.appendLiteral(" AND b.mime_type = ")
            sql.appendInterpolation(type)
        case .like(let pattern):
            sql.appendLiteral(" AND b.mime_type LIKE ")
            sql.appendInterpolation(pattern)
            sql.appendLiteral(" ESCAPE '\\'")
        case nil:
            break
        }
    }
}
