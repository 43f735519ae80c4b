import GRDB

extension SQLiteMediaCatalog {
    /// Aggregate SQL only, no per-blob work.
    public func stats(byUser: Bool) async throws(StoreError) -> MediaStats {
        try await read { db in
            let present = try Row.fetchOne(db, sql: """
                SELECT count(*) AS n, coalesce(sum(size), 0) AS bytes, min(created_at) AS oldest, max(created_at) AS newest
                FROM blobs WHERE state = 'present'
                """)
            let states = try Row.fetchAll(db, sql: "SELECT state, count(*) AS n FROM blobs GROUP BY state")
            func count(_ state: BlobState) -> Int {
                states.first { $0["state"] == state.rawValue }.map { $0["n"] as Int } ?? 0
            }
            let references = try Row.fetchOne(db, sql: """
                SELECT count(*) AS n, coalesce(sum(b.size), 0) AS bytes
                FROM attachments a JOIN blobs b ON b.hash = a.blob_hash WHERE b.state = 'present'
                """)
            let referencedStored = try Int64.fetchOne(db, sql: """
                SELECT coalesce(sum(size), 0) FROM blobs b
                WHERE state = 'present' AND EXISTS (SELECT 1 FROM attachments a WHERE a.blob_hash = b.hash)
                """) ?? 0
            let unreferenced = try Row.fetchOne(db, sql: """
                SELECT count(*) AS n, coalesce(sum(size), 0) AS bytes FROM blobs b
                WHERE state = 'present' AND NOT EXISTS (SELECT 1 FROM attachments a WHERE a.blob_hash = b.hash)
                """)
            let byType = try Row.fetchAll(db, sql: """
                SELECT mime_type, count(*) AS n, sum(size) AS bytes FROM blobs WHERE state = 'present'
                GROUP BY mime_type ORDER BY bytes DESC, mime_type
                """).map { MediaStats.TypeTotal(type: $0["mime_type"], blobs: $0["n"], bytes: $0["bytes"]) }
            return MediaStats(
                blobs: present?["n"] ?? 0, bytesStored: present?["bytes"] ?? 0,
                pruned: count(.pruned), quarantined: count(.quarantined),
                attachments: references?["n"] ?? 0, bytesReferenced: references?["bytes"] ?? 0, referencedStored: referencedStored,
                unreferencedBlobs: unreferenced?["n"] ?? 0, unreferencedBytes: unreferenced?["bytes"] ?? 0,
                oldest: present?["oldest"], newest: present?["newest"], byType: byType,
                byUser: byUser ? try Self.userTotals(in: db) : nil)
        }
    }

    private static func userTotals(in db: Database) throws -> [MediaStats.UserTotal] {
        // Two grouped scans joined in Swift: a correlated subquery per user was quadratic.
        var present: [String: (blobs: Int, bytes: Int64)] = [:]
        for row in try Row.fetchAll(db, sql: """
            SELECT ub.username, count(*) AS distinct_blobs,
                   coalesce(sum(CASE WHEN b.state = 'present' THEN b.size ELSE 0 END), 0) AS present
            FROM (SELECT DISTINCT username, blob_hash FROM uploads WHERE state = 'done') ub
            JOIN blobs b ON b.hash = ub.blob_hash GROUP BY ub.username
            """) {
            present[row["username"]] = (row["distinct_blobs"], row["present"])
        }
        return try Row.fetchAll(db, sql: """
            SELECT username, count(*) AS uploads, sum(size) AS uploaded FROM uploads WHERE state = 'done'
            GROUP BY username ORDER BY uploaded DESC, username
            """).map { row in
                let user: String = row["username"]
                return MediaStats.UserTotal(user: user, uploads: row["uploads"], bytesUploaded: row["uploaded"],
                                      distinctBlobs: present[user]?.blobs ?? 0, bytesPresent: present[user]?.bytes ?? 0)
            }
    }
}
