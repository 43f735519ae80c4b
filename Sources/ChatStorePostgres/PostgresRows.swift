import ChatProtocol
import ChatStore
import Foundation
import Logging
import PostgresNIO

extension PostgresConnection {
    /// Runs `query` and returns its rows, each readable by column name.
    func rows(_ query: PostgresQuery, logger: Logger) async throws -> [PostgresRandomAccessRow] {
        var rows: [PostgresRandomAccessRow] = []
        for try await row in try await self.query(query, logger: logger) {
            rows.append(row.makeRandomAccess())
        }
        return rows
    }

    func run(_ query: PostgresQuery, logger: Logger) async throws {
        try await self.query(query, logger: logger)
    }
}

extension PostgresRandomAccessRow {
    func get<T: PostgresDecodable>(_ column: String, _ type: T.Type = T.self) throws -> T {
        try self[column].decode(T.self)
    }

    func int(_ column: String) throws -> Int {
        Int(try get(column, Int64.self))
    }
}

extension SessionRecord {
    /// From a row with the `sessions` columns.
    init?(postgres row: PostgresRandomAccessRow) throws {
        guard let role = Role(rawValue: try row.get("role", String.self)) else { return nil }
        self.init(id: try row.get("id"), username: try row.get("username"), role: role, createdAt: try row.get("created_at"),
                  expiresAt: try row.get("expires_at"), revokedAt: try row.get("revoked_at"), lastUsedAt: try row.get("last_used_at"))
    }
}

extension ChatMessage {
    /// From a row with `PostgresMessageStore.columns`.
    init?(postgres row: PostgresRandomAccessRow, conversation: String) throws {
        guard let role = Role(rawValue: try row.get("sender_role", String.self)) else { return nil }
        self.init(id: try row.get("id"), conversation: conversation, seq: try row.int("seq"), sender: try row.get("sender"),
                  senderRole: role, clientId: try row.get("client_id"), text: try row.get("body"), sentAt: try row.get("sent_at"),
                  broadcast: try row.get("broadcast"))
        (isPrivate, event) = Self.kind(try row.get("kind"), status: try row.get("event_status"), until: try row.get("event_until"),
                                       assignee: try row.get("event_assignee"))
        customerSeq = try row.get("customer_seq", Int64?.self).map(Int.init)
    }
}

extension BlobRecord {
    /// The `blobs` columns a record is read from, on the alias `b`.
    static let postgresColumns = "b.hash, b.size, b.mime_type, b.width, b.height, b.thumbnails, b.state, b.metadata_removed, b.frames, b.duration_ms"

    /// From a row with `postgresColumns`, as SQLite's catalog reads them (thumbnails as JSON text).
    init(postgres row: PostgresRandomAccessRow) throws {
        self.init(hash: try row.get("hash"), size: try row.int("size"), mimeType: try row.get("mime_type"),
                  width: try row.get("width", Int32?.self).map(Int.init), height: try row.get("height", Int32?.self).map(Int.init),
                  thumbnails: MediaCatalogRows.decodeThumbnails(try row.get("thumbnails")),
                  state: BlobState(rawValue: try row.get("state")) ?? .present,
                  metadataRemoved: try row.get("metadata_removed", Bool?.self),
                  frames: try row.get("frames", Int32?.self).map(Int.init),
                  durationMs: try row.get("duration_ms", Int64?.self).map(Int.init))
    }
}

extension UploadRecord {
    /// The `uploads` columns a record is read from.
    static let postgresColumns = "id, username, name, declared_size, declared_sha256, created_at, updated_at, storing_hash"

    init(postgres row: PostgresRandomAccessRow) throws {
        self.init(id: try row.get("id"), username: try row.get("username"), name: try row.get("name"),
                  declaredSize: try row.get("declared_size", Int64?.self).map(Int.init), declaredSHA256: try row.get("declared_sha256"),
                  createdAt: try row.get("created_at"))
        updatedAt = try row.get("updated_at")
        storingHash = try row.get("storing_hash", String?.self)
    }
}

enum PostgresAttachments {
    /// Attachments of the given messages, in position order.
    static func of(_ messageIds: [Int64], on connection: PostgresConnection, logger: Logger) async throws -> [Int64: [Attachment]] {
        guard !messageIds.isEmpty else { return [:] }
        var result: [Int64: [Attachment]] = [:]
        for row in try await connection.rows("""
            SELECT a.message_id, a.name AS attachment_name, a.name_mismatch, \(unescaped: BlobRecord.postgresColumns)
            FROM attachments a JOIN blobs b ON b.hash = a.blob_hash
            WHERE a.message_id = ANY(\(messageIds)) ORDER BY a.message_id, a.position
            """, logger: logger) {
            let blob = try BlobRecord(postgres: row)
            result[try row.get("message_id"), default: []].append(
                blob.attachment(name: try row.get("attachment_name"), nameMismatch: try row.get("name_mismatch")))
        }
        return result
    }

    /// Fills in the attachments of messages read from the database.
    static func fill(_ messages: [ChatMessage], on connection: PostgresConnection, logger: Logger) async throws -> [ChatMessage] {
        let byMessage = try await of(messages.map(\.id), on: connection, logger: logger)
        guard !byMessage.isEmpty else { return messages }
        return messages.map { message in
            var message = message
            message.attachments = byMessage[message.id]
            return message
        }
    }
}
