import ChatProtocol
import Foundation
import GRDB

/// Whether a blob's bytes are in the store (`blobs.state`).
public enum BlobState: String, Sendable, Codable, CaseIterable {
    /// The file is under `blobs/` and may be served and attached.
    case present
    /// Removed by `chat-admin media prune`; the metadata stays and attachments show as expired.
    case pruned
    /// Set aside as corrupted (or found missing) by `chat-admin media verify --repair`.
    case quarantined
}

/// A stored blob's metadata (`blobs` table).
public struct BlobRecord: Sendable, Equatable {
    public var hash: String
    public var size: Int
    public var mimeType: String
    public var width: Int?
    public var height: Int?
    public var thumbnails: [ThumbnailInfo]
    public var state: BlobState

    public init(hash: String, size: Int, mimeType: String, width: Int? = nil, height: Int? = nil, thumbnails: [ThumbnailInfo] = [],
                state: BlobState = .present) {
        self.hash = hash
        self.size = size
        self.mimeType = mimeType
        self.width = width
        self.height = height
        self.thumbnails = thumbnails
        self.state = state
    }

    public func attachment(name: String, nameMismatch: Bool) -> Attachment {
        Attachment(sha256: hash, name: name, type: mimeType, size: size, width: width, height: height,
                   thumbnails: thumbnails, nameMismatch: nameMismatch, expired: state == .present ? nil : true)
    }
}

/// An upload still receiving bytes (`uploads` row in state 'receiving').
public struct UploadRecord: Sendable, Equatable {
    public var id: String
    public var username: String
    public var name: String
    public var declaredSize: Int?
    public var declaredSHA256: String?
    public var createdAt: Int64
    public var updatedAt: Int64
}

/// Media metadata: blobs, uploads and who may see what. The files themselves are the media store's business.
///
/// Removing bytes while the server runs (prune, quarantine) is safe because of one rule on each side:
/// - The server never relies on existing bytes without first *touching* the blob in a write transaction
///   (`touchPresentBlob`, `finishedUpload`): `last_referenced_at = now`, only where `state = 'present'`. A touch that
///   changes no row means "not there": the server stores its own copy of the bytes and marks the blob present again.
/// - A remover (`chat-admin media prune`, `verify --repair`) re-checks its criteria, including "not referenced within
///   the grace period", inside its write transaction, and moves the files away before that transaction commits.
/// SQLite serialises write transactions, so either the touch comes first (the re-check sees a fresh reference and
/// keeps the blob) or the removal does (the touch finds nothing and the server writes the bytes again). The grace
/// period, at least a minute, covers the milliseconds between a touch and the message row that then references the
/// blob.
public struct MediaCatalog: Sendable {
    public let database: ChatDatabase

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

    /// Marks activity (a dropped connection starts the resume window from here).
    public func touchUpload(id: String, at now: Int64 = epochMilliseconds()) async throws(StoreError) {
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

    /// Every upload still receiving, for start-up cleanup and expiry.
    public func receivingUploads() async throws(StoreError) -> [UploadRecord] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM uploads WHERE state = 'receiving'").map(UploadRecord.init(row:))
        }
    }

    public func deleteReceivingUpload(id: String) async throws(StoreError) {
        try await write { db in
            try db.execute(sql: "DELETE FROM uploads WHERE id = ? AND state = 'receiving'", arguments: [id])
        }
    }

    /// Bytes of `user`'s finished uploads created at or after `since` (the daily allowance).
    public func bytesUploaded(by user: String, since: Int64) async throws(StoreError) -> Int {
        try await read { db in
            try Int.fetchOne(db, sql: "SELECT coalesce(sum(size), 0) FROM uploads WHERE username = ? AND created_at >= ? AND state = 'done'",
                             arguments: [user, since]) ?? 0
        }
    }

    /// Records a finished upload: the blob row (first time) or its last reference time, and the upload as done,
    /// in one transaction. Returns whether the blob row existed before.
    @discardableResult
    public func completeUpload(id: String, blob: BlobRecord, nameMismatch: Bool, at now: Int64 = epochMilliseconds())
        async throws(StoreError) -> Bool {
        try await write { db in
            let existed = try Bool.fetchOne(db, sql: "SELECT 1 FROM blobs WHERE hash = ?", arguments: [blob.hash]) ?? false
            try db.execute(sql: """
                INSERT INTO blobs (hash, size, mime_type, width, height, thumbnails, created_at, last_referenced_at, state)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'present')
                ON CONFLICT (hash) DO UPDATE SET last_referenced_at = excluded.last_referenced_at,
                    thumbnails = excluded.thumbnails, width = excluded.width, height = excluded.height,
                    state = 'present', removed_at = NULL
                """, arguments: [blob.hash, blob.size, blob.mimeType, blob.width, blob.height,
                                 Self.encodeThumbnails(blob.thumbnails), now, now])
            try db.execute(sql: """
                UPDATE uploads SET state = 'done', blob_hash = ?, size = ?, name_mismatch = ?, updated_at = ?, completed_at = ?
                WHERE id = ?
                """, arguments: [blob.hash, blob.size, nameMismatch, now, now, id])
            return existed
        }
    }

    /// The blob if its bytes are present, after marking it referenced now (see the type's documentation: call this
    /// before relying on existing bytes). Nil when there is no row or the bytes were removed.
    public func touchPresentBlob(hash: String, at now: Int64 = epochMilliseconds()) async throws(StoreError) -> BlobRecord? {
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

    /// A finished upload of `user`, by upload id or by hash (their latest upload of those bytes), as an attachment.
    /// A present blob is touched (it is about to be referenced by a message); one whose bytes were removed comes
    /// back with `expired == true` and must not be attached.
    public func finishedUpload(of user: String, reference: AttachmentReference, at now: Int64 = epochMilliseconds())
        async throws(StoreError) -> Attachment? {
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

    // MARK: Access

    /// The blob and a display name for it if `user` may fetch it: it is attached to a message of the user's own
    /// conversation (customers) or to any message (agents). Nil otherwise, including when it does not exist.
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
                    WHERE a.blob_hash = ? AND c.customer = ? LIMIT 1
                    """, arguments: [hash, user])
            }
            return row.map { (BlobRecord(row: $0), $0["attachment_name"]) }
        }
    }

    // MARK: Helpers

    static func encodeThumbnails(_ thumbnails: [ThumbnailInfo]) -> String {
        (try? JSONEncoder().encode(thumbnails)).map { String(decoding: $0, as: UTF8.self) } ?? "[]"
    }

    static func decodeThumbnails(_ json: String) -> [ThumbnailInfo] {
        (try? JSONDecoder().decode([ThumbnailInfo].self, from: Data(json.utf8))) ?? []
    }

    private func read<T: Sendable>(_ body: @Sendable @escaping (Database) throws -> T) async throws(StoreError) -> T {
        do { return try await database.pool.read(body) } catch { throw .wrap(error) }
    }

    private func write<T: Sendable>(_ body: @Sendable @escaping (Database) throws -> T) async throws(StoreError) -> T {
        do { return try await database.pool.write(body) } catch { throw .wrap(error) }
    }
}

extension BlobRecord {
    /// From a row with the `blobs` columns.
    public init(row: Row) {
        self.init(hash: row["hash"], size: row["size"], mimeType: row["mime_type"], width: row["width"], height: row["height"],
                  thumbnails: MediaCatalog.decodeThumbnails(row["thumbnails"] ?? "[]"),
                  state: BlobState(rawValue: row["state"] ?? "present") ?? .present)
    }
}

extension UploadRecord {
    public init(id: String, username: String, name: String, declaredSize: Int?, declaredSHA256: String?, createdAt: Int64) {
        self.init(id: id, username: username, name: name, declaredSize: declaredSize, declaredSHA256: declaredSHA256,
                  createdAt: createdAt, updatedAt: createdAt)
    }

    init(row: Row) {
        self.init(id: row["id"], username: row["username"], name: row["name"], declaredSize: row["declared_size"],
                  declaredSHA256: row["declared_sha256"], createdAt: row["created_at"], updatedAt: row["updated_at"])
    }
}

extension MessageStore {
    /// Attachments of the given messages, in position order.
    static func attachments(of messageIds: [Int64], in db: Database) throws -> [Int64: [Attachment]] {
        guard !messageIds.isEmpty else { return [:] }
        let placeholders = Array(repeating: "?", count: messageIds.count).joined(separator: ",")
        var result: [Int64: [Attachment]] = [:]
        for row in try Row.fetchAll(db, sql: """
            SELECT a.message_id, a.name AS attachment_name, a.name_mismatch, b.* FROM attachments a
            JOIN blobs b ON b.hash = a.blob_hash
            WHERE a.message_id IN (\(placeholders)) ORDER BY a.message_id, a.position
            """, arguments: StatementArguments(messageIds)) {
            result[row["message_id"], default: []].append(
                BlobRecord(row: row).attachment(name: row["attachment_name"], nameMismatch: row["name_mismatch"]))
        }
        return result
    }

    /// Fills in the attachments of messages read from the database.
    static func withAttachments(_ messages: [ChatMessage], in db: Database) throws -> [ChatMessage] {
        let byMessage = try attachments(of: messages.map(\.id), in: db)
        guard !byMessage.isEmpty else { return messages }
        return messages.map { message in
            var message = message
            message.attachments = byMessage[message.id]
            return message
        }
    }
}
