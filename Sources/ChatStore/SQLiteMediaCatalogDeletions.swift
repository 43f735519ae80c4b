import ChatProtocol
import GRDB

/// Deferred deletions (see `PendingDeletion`). SQLite runs one write transaction at a time, which is the per-hash
/// lock the rules need.
extension SQLiteMediaCatalog {
    public func holdBlob(hash: String, upload id: String, staleBefore: Int64, at now: Int64) async throws(StoreError) -> Bool {
        try await write { db in
            let claimedAt = try Int64.fetchOne(db, sql: "SELECT claimed_at FROM blob_deletions WHERE hash = ? AND claimed_at IS NOT NULL",
                                               arguments: [hash])
            if let claimedAt {
                guard claimedAt < staleBefore else { return false }
                try db.execute(sql: "DELETE FROM blob_deletions WHERE hash = ?", arguments: [hash])
            }
            try db.execute(sql: "UPDATE uploads SET storing_hash = ?, updated_at = ? WHERE id = ? AND state = 'receiving'",
                           arguments: [hash, now, id])
            return true
        }
    }

    /// Inside `completeUpload`'s transaction: refuses while a live claim stands, drops an unclaimed (or abandoned)
    /// pending deletion.
    static func cancelPendingDeletion(_ hash: String, in db: Database, at now: Int64) throws {
        if let claimedAt = try Int64.fetchOne(db, sql: "SELECT claimed_at FROM blob_deletions WHERE hash = ? AND claimed_at IS NOT NULL",
                                              arguments: [hash]),
           claimedAt >= now - PendingDeletion.lease.inMilliseconds {
            throw StoreError.removalInProgress(hash: hash)
        }
        try db.execute(sql: "DELETE FROM blob_deletions WHERE hash = ?", arguments: [hash])
    }

    public func recordPendingDeletions(_ hashes: [String], disposal: PendingDisposal, at now: Int64) async throws(StoreError) -> [String] {
        try await write { db in
            var recorded: [String] = []
            for hash in hashes {
                let present = try Bool.fetchOne(db, sql: "SELECT 1 FROM blobs WHERE hash = ? AND state = 'present'", arguments: [hash]) ?? false
                guard !present else { continue }
                try db.execute(sql: """
                    INSERT INTO blob_deletions (hash, disposal, thumbnails, created_at) VALUES (?, ?, 1, ?)
                    ON CONFLICT (hash) DO NOTHING
                    """, arguments: [hash, disposal.rawValue, now])
                recorded.append(hash)
            }
            return recorded
        }
    }

    public func claimPendingDeletions(_ hashes: [String]?, limit: Int, claim: String, staleBefore: Int64, at now: Int64)
        async throws(StoreError) -> [PendingDeletion] {
        try await write { db in
            // A row whose blob is present again has nothing left to delete (rule 4 drops it; this is a backstop).
            try db.execute(sql: """
                DELETE FROM blob_deletions WHERE claimed_at IS NULL
                    AND EXISTS (SELECT 1 FROM blobs b WHERE b.hash = blob_deletions.hash AND b.state = 'present')
                """)
            let candidates: [Row]
            let eligible = """
                (d.claimed_at IS NULL OR d.claimed_at < ?)
                AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.hash = d.hash AND b.state = 'present')
                AND NOT EXISTS (SELECT 1 FROM uploads u WHERE u.storing_hash = d.hash AND u.state = 'receiving')
                """
            if let hashes {
                var rows: [Row] = []
                for hash in hashes where rows.count < limit {
                    if let row = try Row.fetchOne(db, sql: "SELECT d.* FROM blob_deletions d WHERE d.hash = ? AND \(eligible)",
                                                  arguments: [hash, staleBefore]) {
                        rows.append(row)
                    }
                }
                candidates = rows
            } else {
                candidates = try Row.fetchAll(db, sql: "SELECT d.* FROM blob_deletions d WHERE \(eligible) ORDER BY d.created_at LIMIT ?",
                                              arguments: [staleBefore, limit])
            }
            var claimed: [PendingDeletion] = []
            for row in candidates {
                try db.execute(sql: "UPDATE blob_deletions SET claimed_at = ?, claim = ? WHERE hash = ?",
                               arguments: [now, claim, row["hash"] as String])
                var deletion = Self.pendingDeletion(row)
                deletion.claimedAt = now
                claimed.append(deletion)
            }
            return claimed
        }
    }

    public func releasePendingDeletions(_ hashes: [String], claim: String) async throws(StoreError) {
        guard !hashes.isEmpty else { return }
        try await write { db in
            for hash in hashes {
                try db.execute(sql: "DELETE FROM blob_deletions WHERE hash = ? AND claim = ?", arguments: [hash, claim])
            }
        }
    }

    public func unclaimPendingDeletions(_ hashes: [String], claim: String) async throws(StoreError) {
        guard !hashes.isEmpty else { return }
        try await write { db in
            for hash in hashes {
                try db.execute(sql: "UPDATE blob_deletions SET claimed_at = NULL, claim = NULL WHERE hash = ? AND claim = ?",
                               arguments: [hash, claim])
            }
        }
    }

    public func pendingDeletions() async throws(StoreError) -> [PendingDeletion] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM blob_deletions ORDER BY created_at, hash").map(Self.pendingDeletion)
        }
    }

    static func pendingDeletion(_ row: Row) -> PendingDeletion {
        PendingDeletion(hash: row["hash"], disposal: PendingDisposal(rawValue: row["disposal"]) ?? .delete,
                        thumbnails: row["thumbnails"], createdAt: row["created_at"], claimedAt: row["claimed_at"])
    }
}
