import ChatStore
import Logging
import PostgresNIO

/// `media strip-metadata`'s move of references from a blob to its cleaned copy (see `MediaCatalog.replaceBlob`).
extension PostgresMediaCatalog {
    public func replaceBlob(_ old: String, with new: BlobRecord, referencedBefore: Int64, releasing hold: String?,
                            at now: Int64) async throws(StoreError) -> Int? {
        let logger = database.logger
        let thumbnails = MediaCatalogRows.encodeThumbnails(new.thumbnails)
        return try await database.withTransaction("moving references to a cleaned blob") { connection -> Int? in
            // Both hashes' locks first (the rules of PendingDeletion for the new one), then the old row's lock before
            // its re-check: a touch committed meanwhile (`finishedUpload` locks the row too) is seen by it.
            try await Self.lockHashes([old, new.hash], on: connection, logger: logger)
            // Released with the move, or without it when there is none; a failure rolls this back and the caller
            // releases the hold itself.
            if let hold { try await connection.run("DELETE FROM uploads WHERE id = \(hold) AND state = 'receiving'", logger: logger) }
            guard let row = try await connection.rows("""
                SELECT created_at, last_referenced_at FROM blobs
                WHERE hash = \(old) AND state = 'present' AND last_referenced_at < \(referencedBefore) FOR UPDATE
                """, logger: logger).first else { return nil }
            guard new.hash != old else {
                try await connection.run("UPDATE blobs SET metadata_removed = true WHERE hash = \(old)", logger: logger)
                return 0
            }
            try await Self.cancelPendingDeletion(new.hash, on: connection, logger: logger, at: now)
            // The copy takes the original's times, so prune's age criteria see the same blob they saw before.
            let createdAt = try row.get("created_at", Int64.self)
            let lastReferencedAt = try row.get("last_referenced_at", Int64.self)
            try await connection.run("""
                INSERT INTO blobs (hash, size, mime_type, width, height, thumbnails, created_at, last_referenced_at, state,
                                   metadata_removed, frames, duration_ms)
                VALUES (\(new.hash), \(new.size), \(new.mimeType), \(new.width), \(new.height), \(thumbnails), \(createdAt),
                        \(lastReferencedAt), 'present', true, \(new.frames.map { Int32(clamping: $0) }), \(new.durationMs.map(Int64.init)))
                ON CONFLICT (hash) DO UPDATE SET last_referenced_at = greatest(blobs.last_referenced_at, excluded.last_referenced_at),
                    thumbnails = excluded.thumbnails, width = excluded.width, height = excluded.height,
                    state = 'present', removed_at = NULL, metadata_removed = true, frames = excluded.frames
                """, logger: logger)
            let moved = try await connection.rows("""
                WITH moved AS (UPDATE attachments SET blob_hash = \(new.hash) WHERE blob_hash = \(old) RETURNING 1)
                SELECT count(*)::bigint AS moved FROM moved
                """, logger: logger).first?.int("moved") ?? 0
            try await connection.run("UPDATE uploads SET blob_hash = \(new.hash) WHERE blob_hash = \(old) AND state = 'done'",
                                     logger: logger)
            return moved
        }
    }
}
