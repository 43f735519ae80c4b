import ChatProtocol
import ChatStore
import Logging
import PostgresNIO

/// The media catalog in PostgreSQL (`blobs`, `uploads`, `attachments`), with the semantics of `SQLiteMediaCatalog`.
///
/// SQLite serialises write transactions; here the deletion protocol (see `MediaCatalog`) rests on the blob row's
/// lock instead. A touch is an `UPDATE ... WHERE state = 'present'`: while a remover on any node holds the row it
/// waits, then re-reads the row and finds it no longer present. The remover locks its rows before re-checking them,
/// so a touch that committed first is seen by the re-check.
public struct PostgresMediaCatalog: MediaCatalog {
    let database: PostgresDatabase

    public init(database: PostgresDatabase) {
        self.database = database
    }

    // MARK: Uploads

    public func insertUpload(_ upload: UploadRecord) async throws(StoreError) {
        try await run("recording an upload", """
            INSERT INTO uploads (id, username, name, declared_size, declared_sha256, state, created_at, updated_at)
            VALUES (\(upload.id), \(upload.username), \(upload.name), \(upload.declaredSize), \(upload.declaredSHA256), 'receiving',
                    \(upload.createdAt), \(upload.updatedAt))
            """)
    }

    public func touchUpload(id: String, at now: Int64) async throws(StoreError) {
        try await run("touching an upload", "UPDATE uploads SET updated_at = \(now) WHERE id = \(id) AND state = 'receiving'")
    }

    public func receivingUpload(id: String) async throws(StoreError) -> UploadRecord? {
        try await all("reading an upload", """
            SELECT \(unescaped: UploadRecord.postgresColumns) FROM uploads WHERE id = \(id) AND state = 'receiving'
            """, UploadRecord.init(postgres:)).first
    }

    public func receivingUploads() async throws(StoreError) -> [UploadRecord] {
        let logger = database.logger
        return try await database.withConnection("reading uploads") { try await Self.receivingUploads(on: $0, logger: logger) }
    }

    static func receivingUploads(on connection: PostgresConnection, logger: Logger) async throws -> [UploadRecord] {
        try await connection.rows("SELECT \(unescaped: UploadRecord.postgresColumns) FROM uploads WHERE state = 'receiving'",
                                  logger: logger).map(UploadRecord.init(postgres:))
    }

    public func deleteReceivingUpload(id: String) async throws(StoreError) {
        try await run("deleting an upload", "DELETE FROM uploads WHERE id = \(id) AND state = 'receiving'")
    }

    public func bytesUploaded(by user: String, since: Int64) async throws(StoreError) -> Int {
        try await all("counting uploaded bytes", """
            SELECT coalesce(sum(size), 0)::bigint AS bytes FROM uploads
            WHERE username = \(user) AND created_at >= \(since) AND state = 'done'
            """) { try $0.int("bytes") }.first ?? 0
    }

    @discardableResult
    public func completeUpload(id: String, blob: BlobRecord, nameMismatch: Bool, at now: Int64) async throws(StoreError) -> Bool {
        let logger = database.logger
        let thumbnails = MediaCatalogRows.encodeThumbnails(blob.thumbnails)
        return try await database.withTransaction("completing an upload") { connection in
            // Rule 4 of PendingDeletion: never present while a deletion of its objects is claimed.
            try await Self.cancelPendingDeletion(blob.hash, on: connection, logger: logger, at: now)
            // A row that the upsert updated has a non-zero xmax (it was locked by this transaction); a new row has
            // none. Asking first would race with another node inserting the same blob.
            let existed = try await connection.rows("""
                INSERT INTO blobs (hash, size, mime_type, width, height, thumbnails, created_at, last_referenced_at, state,
                                   metadata_removed, frames, duration_ms)
                VALUES (\(blob.hash), \(blob.size), \(blob.mimeType), \(blob.width), \(blob.height), \(thumbnails), \(now), \(now), 'present',
                        \(blob.metadataRemoved), \(blob.frames.map { Int32(clamping: $0) }), \(blob.durationMs.map(Int64.init)))
                ON CONFLICT (hash) DO UPDATE SET last_referenced_at = excluded.last_referenced_at,
                    thumbnails = excluded.thumbnails, width = excluded.width, height = excluded.height,
                    state = 'present', removed_at = NULL, metadata_removed = excluded.metadata_removed,
                    frames = excluded.frames, duration_ms = excluded.duration_ms
                RETURNING (xmax <> 0) AS existed
                """, logger: logger).first?.get("existed", Bool.self) ?? false
            try await connection.run("""
                UPDATE uploads SET state = 'done', blob_hash = \(blob.hash), size = \(blob.size), name_mismatch = \(nameMismatch),
                    updated_at = \(now), completed_at = \(now), storing_hash = NULL
                WHERE id = \(id)
                """, logger: logger)
            return existed
        }
    }

    // MARK: Blobs

    public func touchPresentBlob(hash: String, at now: Int64) async throws(StoreError) -> BlobRecord? {
        try await all("touching a blob", """
            UPDATE blobs b SET last_referenced_at = \(now) WHERE b.hash = \(hash) AND b.state = 'present'
            RETURNING \(unescaped: BlobRecord.postgresColumns)
            """, BlobRecord.init(postgres:)).first
    }

    public func blob(hash: String) async throws(StoreError) -> BlobRecord? {
        try await all("reading a blob", "SELECT \(unescaped: BlobRecord.postgresColumns) FROM blobs b WHERE b.hash = \(hash)",
                      BlobRecord.init(postgres:)).first
    }

    private static let finishedUploads = """
        SELECT u.name AS upload_name, u.name_mismatch, \(BlobRecord.postgresColumns) FROM uploads u JOIN blobs b ON b.hash = u.blob_hash
        """

    public func finishedUpload(of user: String, reference: AttachmentReference, at now: Int64) async throws(StoreError) -> Attachment? {
        let logger = database.logger
        return try await database.withTransaction("resolving an attachment") { connection -> Attachment? in
            // The blob row is locked before its state is read: a remover holding it makes this wait and then see
            // what the remover committed, so a present blob stays present until this transaction's touch commits.
            let rows: [PostgresRandomAccessRow]
            if let id = reference.uploadId {
                rows = try await connection.rows("""
                    \(unescaped: Self.finishedUploads) WHERE u.username = \(user) AND u.state = 'done' AND u.id = \(id) FOR UPDATE OF b
                    """, logger: logger)
            } else if let hash = reference.sha256 {
                rows = try await connection.rows("""
                    \(unescaped: Self.finishedUploads) WHERE u.username = \(user) AND u.state = 'done' AND u.blob_hash = \(Hashes.normalized(hash))
                    ORDER BY u.completed_at DESC LIMIT 1 FOR UPDATE OF b
                    """, logger: logger)
            } else {
                rows = []
            }
            guard let row = rows.first else { return nil }
            let blob = try BlobRecord(postgres: row)
            if blob.state == .present {
                try await connection.run("UPDATE blobs SET last_referenced_at = \(now) WHERE hash = \(blob.hash)", logger: logger)
            }
            return blob.attachment(name: try row.get("upload_name"), nameMismatch: try row.get("name_mismatch"))
        }
    }

    public func accessibleBlob(hash: String, user: String, role: Role) async throws(StoreError) -> (blob: BlobRecord, name: String)? {
        let query: PostgresQuery = switch role {
        case .agent:
            """
            SELECT a.name AS attachment_name, \(unescaped: BlobRecord.postgresColumns) FROM attachments a JOIN blobs b ON b.hash = a.blob_hash
            WHERE a.blob_hash = \(hash) LIMIT 1
            """
        case .customer:
            """
            SELECT a.name AS attachment_name, \(unescaped: BlobRecord.postgresColumns) FROM attachments a
            JOIN blobs b ON b.hash = a.blob_hash
            JOIN messages m ON m.id = a.message_id
            JOIN conversations c ON c.id = m.conversation_id
            WHERE a.blob_hash = \(hash) AND c.customer = \(user) AND m.kind = 'message' LIMIT 1
            """
        }
        return try await all("checking access to a blob", query) { row in
            (blob: try BlobRecord(postgres: row), name: try row.get("attachment_name", String.self))
        }.first
    }

    // MARK: Running queries

    func run(_ what: String, _ query: PostgresQuery) async throws(StoreError) {
        let logger = database.logger
        try await database.withConnection(what) { try await $0.run(query, logger: logger) }
    }

    /// The rows of `query`, each made into a value by `record`.
    func all<T: Sendable>(_ what: String, _ query: PostgresQuery, _ record: @escaping @Sendable (PostgresRandomAccessRow) throws -> T)
        async throws(StoreError) -> [T] {
        let logger = database.logger
        return try await database.withConnection(what) { try await $0.rows(query, logger: logger).map(record) }
    }

    /// Runs `body` on one snapshot of the database, as SQLite's read transactions do.
    func snapshot<T: Sendable>(_ what: String, _ body: @escaping @Sendable (PostgresConnection, Logger) async throws -> T)
        async throws(StoreError) -> T {
        let logger = database.logger
        return try await database.withTransaction(what) { connection in
            try await connection.run("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", logger: logger)
            return try await body(connection, logger)
        }
    }
}
