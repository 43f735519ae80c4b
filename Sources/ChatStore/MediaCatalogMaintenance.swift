import GRDB

/// The queries of `chat-admin media` (stats, verify, prune, gc).
extension SQLiteMediaCatalog {
    public func inventory() async throws(StoreError) -> MediaInventory {
        try await read { db in
            MediaInventory(blobs: try Row.fetchAll(db, sql: "SELECT * FROM blobs").map(BlobRecord.init(row:)),
                           receivingUploads: try Self.receivingUploads(in: db))
        }
    }

    public func presentBlobSizes() async throws(StoreError) -> [String: Int64] {
        try await read { db in
            var rows: [String: Int64] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT hash, size FROM blobs WHERE state = 'present'") {
                rows[row["hash"]] = row["size"]
            }
            return rows
        }
    }

    public func pruneCandidates(_ selection: BlobSelection, maxTotal: Int64?) async throws(StoreError)
        -> (candidates: [PruneCandidate], presentBytes: Int64) {
        let (condition, arguments) = selection.condition
        return try await read { db in
            let total = try Int64.fetchOne(db, sql: "SELECT coalesce(sum(size), 0) FROM blobs WHERE state = 'present'") ?? 0
            let matching = try Row.fetchAll(db, sql: """
                SELECT b.hash, b.mime_type, b.size, b.last_referenced_at,
                       (SELECT count(*) FROM attachments a WHERE a.blob_hash = b.hash) AS refs
                FROM blobs b WHERE \(condition) ORDER BY b.last_referenced_at, b.hash
                """, arguments: arguments).map {
                    PruneCandidate(hash: $0["hash"], type: $0["mime_type"], size: $0["size"],
                                   lastReferencedAt: $0["last_referenced_at"], attachments: $0["refs"])
                }
            return (PruneCandidate.needed(matching, presentBytes: total, maxTotal: maxTotal), total)
        }
    }

    public func removeBlobs(_ hashes: [String], marking state: BlobState, keepThumbnails: Bool, recheck: BlobRecheck,
                            deferring: PendingDisposal?, at now: Int64, setAside: @escaping @Sendable (BlobRecord) throws -> Bool) async throws(BlobRemovalFailure) -> [String] {
        let (condition, arguments): (String, StatementArguments) = switch recheck {
        case .matches(let selection): selection.condition
        case .present: ("b.state = 'present'", [])
        }
        do {
            return try await database.pool.write { db -> [String] in
                var done: [String] = []
                // Cached statements: preparing (and GRDB's authorizer) per blob was a third of the time.
                let eligible = try db.cachedStatement(sql: "SELECT b.* FROM blobs b WHERE b.hash = ? AND \(condition)")
                let update = try db.cachedStatement(sql: """
                    UPDATE blobs SET state = ?, removed_at = ?, thumbnails = CASE WHEN ? THEN thumbnails ELSE '[]' END
                    WHERE hash = ?
                    """)
                for hash in hashes {
                    guard let row = try Row.fetchOne(eligible, arguments: [hash] + arguments) else { continue }
                    let blob = BlobRecord(row: row)
                    do {
                        guard try setAside(blob) else { continue }
                    } catch {
                        throw SetAsideFailed(error: error)
                    }
                    try update.execute(arguments: [state.rawValue, now, keepThumbnails, hash])
                    if let deferring {
                        try db.execute(sql: """
                            INSERT INTO blob_deletions (hash, disposal, thumbnails, created_at) VALUES (?, ?, ?, ?)
                            ON CONFLICT (hash) DO NOTHING
                            """, arguments: [hash, deferring.rawValue, !keepThumbnails, now])
                    }
                    done.append(hash)
                }
                return done
            }
        } catch let failure as SetAsideFailed {
            throw .setAside(failure.error)
        } catch {
            throw .database(.wrap(error))
        }
    }

    public func deleteStaleUploads(ids: [String], updatedBefore cutoff: Int64) async throws(StoreError) {
        try await write { db in
            for id in ids {
                try db.execute(sql: "DELETE FROM uploads WHERE id = ? AND state = 'receiving' AND updated_at < ?",
                               arguments: [id, cutoff])
            }
        }
    }
}

/// Carries the set-aside closure's error through GRDB, which rolls the transaction back on any error.
private struct SetAsideFailed: Error {
    let error: any Error
}

extension BlobSelection {
    /// The SQL condition (on `blobs b`) that a blob must meet, now and again inside the deleting transaction.
    var condition: (sql: String, arguments: StatementArguments) {
        var sql = "b.state = 'present' AND b.last_referenced_at < ?"
        var arguments: StatementArguments = [referencedBefore]
        if unreferenced {
            sql += " AND NOT EXISTS (SELECT 1 FROM attachments a WHERE a.blob_hash = b.hash)"
        }
        if let largerThan {
            sql += " AND b.size > ?"
            arguments += [largerThan]
        }
        switch typeMatch {
        case .exact(let type):
            sql += " AND b.mime_type = ?"
            arguments += [type]
        case .like(let pattern):
            sql += " AND b.mime_type LIKE ? ESCAPE '\\'"
            arguments += [pattern]
        case nil:
            break
        }
        return (sql, arguments)
    }
}
