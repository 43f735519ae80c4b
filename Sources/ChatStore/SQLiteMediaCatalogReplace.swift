import GRDB

/// `media strip-metadata`'s move of references from a blob to its cleaned copy (see `MediaCatalog.replaceBlob`).
/// SQLite's single writer serialises it with the server's touches, as for `removeBlobs`.
extension SQLiteMediaCatalog {
    public func replaceBlob(_ old: String, with new: BlobRecord, referencedBefore: Int64, releasing hold: String?,
                            at now: Int64) async throws(StoreError) -> Int? {
        try await write { db -> Int? in
            // Released with the move, or without it when there is none; a failure rolls this back and the caller
            // releases the hold itself.
            if let hold { try db.execute(sql: "DELETE FROM uploads WHERE id = ? AND state = 'receiving'", arguments: [hold]) }
            guard let row = try Row.fetchOne(db, sql: """
                SELECT created_at, last_referenced_at FROM blobs WHERE hash = ? AND state = 'present' AND last_referenced_at < ?
                """, arguments: [old, referencedBefore]) else { return nil }
            guard new.hash != old else {
                try db.execute(sql: "UPDATE blobs SET metadata_removed = 1 WHERE hash = ?", arguments: [old])
                return 0
            }
            try Self.cancelPendingDeletion(new.hash, in: db, at: now)
            // The copy takes the original's times, so prune's age criteria see the same blob they saw before.
            try db.execute(sql: """
                INSERT INTO blobs (hash, size, mime_type, width, height, thumbnails, created_at, last_referenced_at, state,
                                   metadata_removed, frames, duration_ms)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'present', 1, ?, ?)
                ON CONFLICT (hash) DO UPDATE SET last_referenced_at = max(last_referenced_at, excluded.last_referenced_at),
                    thumbnails = excluded.thumbnails, width = excluded.width, height = excluded.height,
                    state = 'present', removed_at = NULL, metadata_removed = 1, frames = excluded.frames
                """, arguments: [new.hash, new.size, new.mimeType, new.width, new.height,
                                 MediaCatalogRows.encodeThumbnails(new.thumbnails), row["created_at"] as Int64,
                                 row["last_referenced_at"] as Int64, new.frames, new.durationMs])
            try db.execute(sql: "UPDATE attachments SET blob_hash = ? WHERE blob_hash = ?", arguments: [new.hash, old])
            let moved = db.changesCount
            try db.execute(sql: "UPDATE uploads SET blob_hash = ? WHERE blob_hash = ? AND state = 'done'", arguments: [new.hash, old])
            return moved
        }
    }
}
