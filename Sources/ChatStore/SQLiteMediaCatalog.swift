import ChatProtocol
import GRDB

/// The media catalog in the chat database (`blobs`, `uploads`, `attachments`).
public struct SQLiteMediaCatalog: MediaCatalog {
    let database: ChatDatabase

    public init(database: ChatDatabase) {
        self.database = database
    }

    // MARK: Uploads

    public func insertUpload(_ upload: UploadRecord) async throws(StoreError) {
        try await write { db in
            try db.execute(sql: """
                INSERT INTO uploads (id, username, name, declared_size, declared_sha256, state, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, 'receiving', ?, ?)
                """, arguments: [upload.id, upload.username, upload.name, upload.declaredSize, upload.declaredSHA256,
                                 upload.createdAt, upload.updatedAt])
        }
    }

    public func touchUpload(id: String, at now: Int64) async throws(StoreError) {
        try await write { db in
            try db.execute(sql: "UPDATE uploads SET updated_at = ? WHERE id = ? AND state = 'receiving'", arguments: [now, id])
        }
    }

    public func receivingUpload(id: String) async throws(StoreError) -> UploadRecord? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM uploads WHERE id = ? AND state = 'receiving'", arguments: [id])
                .map(UploadRecord.init(row:))
        }
    }

    public func receivingUploads() async throws(StoreError) -> [UploadRecord] {
        try await read { db in try Self.receivingUploads(in: db) }
    }

    static func receivingUploads(in db: Database) throws -> [UploadRecord] {
        try Row.fetchAll(db, sql: "SELECT * FROM uploads WHERE state = 'receiving'").map(UploadRecord.init(row:))
    }

    public func deleteReceivingUpload(id: String) async throws(StoreError) {
        try await write { db in
            try db.execute(sql: "DELETE FROM uploads WHERE id = ? AND state = 'receiving'", arguments: [id])
        }
    }

    public func bytesUploaded(by user: String, since: Int64) async throws(StoreError) -> Int {
        try await read { db in
            try Int.fetchOne(db, sql: "SELECT coalesce(sum(size), 0) FROM uploads WHERE username = ? AND created_at >= ? AND state = 'done'",
                             arguments: [user, since]) ?? 0
        }
    }

    @discardableResult
    public func completeUpload(id: String, blob: BlobRecord, nameMismatch: Bool, at now: Int64) async throws(StoreError) -> Bool {
        try await write { db in
            // Rule 4 of PendingDeletion: never present while a deletion of its objects is claimed.
            try Self.cancelPendingDeletion(blob.hash, in: db, at: now)
            let existed = try Bool.fetchOne(db, sql: "SELECT 1 FROM blobs WHERE hash = ?", arguments: [blob.hash]) ?? false
            try db.execute(sql: """
                INSERT INTO blobs (hash, size, mime_type, width, height, thumbnails, created_at, last_referenced_at, state,
                                   metadata_removed, frames, duration_ms)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'present', ?, ?, ?)
                ON CONFLICT (hash) DO UPDATE SET last_referenced_at = excluded.last_referenced_at,
                    thumbnails = excluded.thumbnails, width = excluded.width, height = excluded.height,
                    state = 'present', removed_at = NULL, metadata_removed = excluded.metadata_removed,
                    frames = excluded.frames, duration_ms = excluded.duration_ms
                """, arguments: [blob.hash, blob.size, blob.mimeType, blob.width, blob.height,
                                 MediaCatalogRows.encodeThumbnails(blob.thumbnails), now, now, blob.metadataRemoved, blob.frames,
                                 blob.durationMs])
            try db.execute(sql: """
                UPDATE uploads SET state = 'done', blob_hash = ?, size = ?, name_mismatch = ?, updated_at = ?, completed_at = ?,
                    storing_hash = NULL
                WHERE id = ?
                """, arguments: [blob.hash, blob.size, nameMismatch, now, now, id])
            return existed
        }
    }

    // MARK: Blobs

    public func touchPresentBlob(hash: String, at now: Int64) async throws(StoreError) -> BlobRecord? {
        try await write { db in
            try db.execute(sql: "UPDATE blobs SET last_referenced_at = ? WHERE hash = ? AND state = 'present'",
                           arguments: [now, hash])
            guard db.changesCount > 0 else { return nil }
            return try Row.fetchOne(db, sql: "SELECT * FROM blobs WHERE hash = ?", arguments: [hash]).map(BlobRecord.init(row:))
        }
    }

    public func blob(hash: String) async throws(StoreError) -> BlobRecord? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM blobs WHERE hash = ?", arguments: [hash]).map(BlobRecord.init(row:))
        }
    }

    public func finishedUpload(of user: String, reference: AttachmentReference, at now: Int64) async throws(StoreError) -> Attachment? {
        try await write { db in
            let select = """
                SELECT u.name AS upload_name, u.name_mismatch, b.* FROM uploads u JOIN blobs b ON b.hash = u.blob_hash
                WHERE u.username = ? AND u.state = 'done'
                """
            let row: Row?
            if let id = reference.uploadId {
                row = try Row.fetchOne(db, sql: select + " AND u.id = ?", arguments: [user, id])
            } else if let hash = reference.sha256 {
                row = try Row.fetchOne(db, sql: select + " AND u.blob_hash = ? ORDER BY u.completed_at DESC LIMIT 1",
                                       arguments: [user, Hashes.normalized(hash)])
            } else {
                row = nil
            }
            guard let row else { return nil }
            let blob = BlobRecord(row: row)
            if blob.state == .present {
                try db.execute(sql: "UPDATE blobs SET last_referenced_at = ? WHERE hash = ?", arguments: [now, blob.hash])
            }
            return blob.attachment(name: row["upload_name"], nameMismatch: row["name_mismatch"])
        }
    }

    public func accessibleBlob(hash: String, user: String, role: Role) async throws(StoreError) -> (blob: BlobRecord, name: String)? {
        try await read { db in
            let row: Row?
            switch role {
            case .agent:
                row = try Row.fetchOne(db, sql: """
                    SELECT a.name AS attachment_name, b.* FROM attachments a JOIN blobs b ON b.hash = a.blob_hash
                    WHERE a.blob_hash = ? LIMIT 1
                    """, arguments: [hash])
            case .customer:
                row = try Row.fetchOne(db, sql: """
                    SELECT a.name AS attachment_name, b.* FROM attachments a
                    JOIN blobs b ON b.hash = a.blob_hash
                    JOIN messages m ON m.id = a.message_id
                    JOIN conversations c ON c.id = m.conversation_id
                    WHERE a.blob_hash = ? AND c.customer = ? AND m.kind = 'message' LIMIT 1
                    """, arguments: [hash, user])
            }
            return row.map { (BlobRecord(row: $0), $0["attachment_name"]) }
        }
    }

    // MARK: Access to the database

    func read<T: Sendable>(_ body: @Sendable @escaping (Database) throws -> T) async throws(StoreError) -> T {
        do { return try await database.pool.read(body) } catch { throw .wrap(error) }
    }

    func write<T: Sendable>(_ body: @Sendable @escaping (Database) throws -> T) async throws(StoreError) -> T {
        do { return try await database.pool.write(body) } catch { throw .wrap(error) }
    }
}
