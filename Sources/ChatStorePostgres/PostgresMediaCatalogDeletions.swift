import ChatProtocol
import ChatStore
import Logging
import PostgresNIO

/// Deferred deletions (see `PendingDeletion`). Each transaction that reads or changes a hash's pending deletion,
/// hold or presence under the rules takes that hash's transaction-level advisory lock first: the rules read one
/// table and write another (a claim reads `blobs` and `uploads`, a hold reads `blob_deletions`), which row locks
/// alone do not serialise under READ COMMITTED. Statements after the lock see everything committed before it.
extension PostgresMediaCatalog {
    /// The advisory lock class of blob hashes (two-key locks: this class and `hashtext(hash)`).
    static let hashLockClass: Int32 = 0x6D65_6469  // "medi"

    /// Locks `hashes` for this transaction, in one order, so two transactions locking several never deadlock.
    static func lockHashes(_ hashes: [String], on connection: PostgresConnection, logger: Logger) async throws {
        guard !hashes.isEmpty else { return }
        try await connection.run("""
            SELECT pg_advisory_xact_lock(\(hashLockClass), k) FROM
                (SELECT DISTINCT hashtext(h) AS k FROM unnest(\(hashes)::text[]) AS h ORDER BY 1) AS keys
            """, logger: logger)
    }

    static func cancelPendingDeletion(_ hash: String, on connection: PostgresConnection, logger: Logger, at now: Int64) async throws {
        try await lockHashes([hash], on: connection, logger: logger)
        let live = now - PendingDeletion.lease.inMilliseconds
        let claimed = try await connection.rows("""
            SELECT 1 AS claimed FROM blob_deletions WHERE hash = \(hash) AND claimed_at IS NOT NULL AND claimed_at >= \(live)
            """, logger: logger)
        if !claimed.isEmpty { throw StoreError.removalInProgress(hash: hash) }
        try await connection.run("DELETE FROM blob_deletions WHERE hash = \(hash)", logger: logger)
    }

    public func holdBlob(hash: String, upload id: String, staleBefore: Int64, at now: Int64) async throws(StoreError) -> Bool {
        let logger = database.logger
        return try await database.withTransaction("holding a blob for an upload") { connection in
            try await Self.lockHashes([hash], on: connection, logger: logger)
            let claimed = try await connection.rows("""
                SELECT claimed_at FROM blob_deletions WHERE hash = \(hash) AND claimed_at IS NOT NULL
                """, logger: logger)
            if let row = claimed.first {
                guard try row.get("claimed_at", Int64.self) < staleBefore else { return false }
                try await connection.run("DELETE FROM blob_deletions WHERE hash = \(hash)", logger: logger)
            }
            try await connection.run("""
                UPDATE uploads SET storing_hash = \(hash), updated_at = \(now) WHERE id = \(id) AND state = 'receiving'
                """, logger: logger)
            return true
        }
    }

    public func recordPendingDeletions(_ hashes: [String], disposal: PendingDisposal, at now: Int64) async throws(StoreError) -> [String] {
        let logger = database.logger
        return try await database.withTransaction("recording pending deletions") { connection in
            try await Self.lockHashes(hashes, on: connection, logger: logger)
            let present = Set(try await connection.rows("""
                SELECT hash FROM blobs WHERE hash = ANY(\(hashes)) AND state = 'present'
                """, logger: logger).map { try $0.get("hash", String.self) })
            let recorded = hashes.filter { !present.contains($0) }
            try await connection.run("""
                INSERT INTO blob_deletions (hash, disposal, thumbnails, created_at)
                SELECT h, \(disposal.rawValue), true, \(now) FROM unnest(\(recorded)::text[]) AS h
                ON CONFLICT (hash) DO NOTHING
                """, logger: logger)
            return recorded
        }
    }

    public func claimPendingDeletions(_ hashes: [String]?, limit: Int, claim: String, staleBefore: Int64, at now: Int64)
        async throws(StoreError) -> [PendingDeletion] {
        let logger = database.logger
        return try await database.withTransaction("claiming pending deletions") { connection in
            // Which rows to look at, unlocked; everything is decided again after the locks.
            let wanted: [String]
            if let hashes {
                wanted = hashes
            } else {
                wanted = try await connection.rows("""
                    SELECT hash FROM blob_deletions WHERE claimed_at IS NULL OR claimed_at < \(staleBefore)
                    ORDER BY created_at LIMIT \(limit)
                    """, logger: logger).map { try $0.get("hash", String.self) }
            }
            guard !wanted.isEmpty else { return [] }
            try await Self.lockHashes(wanted, on: connection, logger: logger)
            try await connection.run("""
                DELETE FROM blob_deletions d WHERE d.hash = ANY(\(wanted)) AND d.claimed_at IS NULL
                    AND EXISTS (SELECT 1 FROM blobs b WHERE b.hash = d.hash AND b.state = 'present')
                """, logger: logger)
            return try await connection.rows("""
                UPDATE blob_deletions d SET claimed_at = \(now), claim = \(claim)
                WHERE d.hash IN (
                    SELECT d2.hash FROM blob_deletions d2 WHERE d2.hash = ANY(\(wanted))
                        AND (d2.claimed_at IS NULL OR d2.claimed_at < \(staleBefore))
                        AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.hash = d2.hash AND b.state = 'present')
                        AND NOT EXISTS (SELECT 1 FROM uploads u WHERE u.storing_hash = d2.hash AND u.state = 'receiving')
                    ORDER BY d2.created_at LIMIT \(limit))
                RETURNING d.hash, d.disposal, d.thumbnails, d.created_at, d.claimed_at
                """, logger: logger).map(Self.pendingDeletion)
        }
    }

    public func releasePendingDeletions(_ hashes: [String], claim: String) async throws(StoreError) {
        guard !hashes.isEmpty else { return }
        try await run("releasing pending deletions", "DELETE FROM blob_deletions WHERE hash = ANY(\(hashes)) AND claim = \(claim)")
    }

    public func unclaimPendingDeletions(_ hashes: [String], claim: String) async throws(StoreError) {
        guard !hashes.isEmpty else { return }
        try await run("giving up pending deletions", """
            UPDATE blob_deletions SET claimed_at = NULL, claim = NULL WHERE hash = ANY(\(hashes)) AND claim = \(claim)
            """)
    }

    public func pendingDeletions() async throws(StoreError) -> [PendingDeletion] {
        try await all("reading pending deletions", """
            SELECT hash, disposal, thumbnails, created_at, claimed_at FROM blob_deletions ORDER BY created_at, hash COLLATE "C"
            """) { try Self.pendingDeletion($0) }
    }

    static func pendingDeletion(_ row: PostgresRandomAccessRow) throws -> PendingDeletion {
        PendingDeletion(hash: try row.get("hash", String.self),
                        disposal: PendingDisposal(rawValue: try row.get("disposal", String.self)) ?? .delete,
                        thumbnails: try row.get("thumbnails", Bool.self), createdAt: try row.get("created_at", Int64.self),
                        claimedAt: try row.get("claimed_at", Int64?.self))
    }
}
