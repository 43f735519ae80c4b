import Foundation
import GRDB

/// A column value as it is copied between databases.
public enum ColumnValue: Sendable, Hashable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case bytes([UInt8])
}

/// The tables `chat-admin migrate` copies, in an order where every row's references come before it, with their
/// columns, the columns that identify a row (`key`), and the columns that say it is the same row (`identity`, the key
/// first): a row of the target with a source row's key but another identity (a token made in PostgreSQL first, with
/// the same id) is not a copy of it. The other columns may change after a copy (counters, status, revocation) and
/// are copied again.
public struct ExportedTable: Sendable {
    public var name: String
    public var columns: [String]
    public var key: [String]
    public var identity: [String]

    init(name: String, columns: [String], key: [String], same: [String] = []) {
        self.name = name
        self.columns = columns
        self.key = key
        identity = key + same
    }

    public static let all: [ExportedTable] = [
        ExportedTable(name: "sessions", columns: ["id", "username", "token_hash", "role", "created_at", "expires_at", "revoked_at",
                                                  "last_used_at"], key: ["id"], same: ["username", "token_hash", "role"]),
        ExportedTable(name: "conversations", columns: ["id", "customer", "last_seq", "customer_messages", "created_at", "customer_last_seq",
                                                       "status", "snoozed_until", "status_customer_messages", "assignee"],
                      key: ["id"], same: ["customer"]),
        ExportedTable(name: "messages", columns: ["id", "conversation_id", "seq", "sender", "sender_role", "client_id", "body", "sent_at",
                                                  "broadcast", "customer_ordinal", "kind", "customer_seq", "event_status", "event_until",
                                                  "event_assignee"], key: ["id"], same: ["conversation_id", "seq", "sender", "client_id", "kind"]),
        ExportedTable(name: "read_markers", columns: ["username", "conversation_id", "seq", "updated_at"], key: ["username", "conversation_id"]),
        ExportedTable(name: "blobs", columns: ["hash", "size", "mime_type", "width", "height", "thumbnails", "created_at",
                                               "last_referenced_at", "state", "removed_at", "metadata_removed", "frames", "duration_ms"],
                      key: ["hash"], same: ["size"]),
        ExportedTable(name: "uploads", columns: ["id", "username", "name", "declared_size", "declared_sha256", "state", "blob_hash", "size",
                                                 "name_mismatch", "created_at", "updated_at", "completed_at", "storing_hash"],
                      key: ["id"], same: ["username", "created_at"]),
        ExportedTable(name: "attachments", columns: ["message_id", "position", "blob_hash", "name", "uploader", "name_mismatch"],
                      key: ["message_id", "position"], same: ["blob_hash"]),
        ExportedTable(name: "blob_deletions", columns: ["hash", "disposal", "thumbnails", "created_at", "claimed_at", "claim"],
                      key: ["hash"], same: ["disposal"]),
        ExportedTable(name: "canned_replies", columns: ["name", "body", "updated_at"], key: ["name"]),
    ]
}

extension ChatDatabase {
    /// Rows of `table` in key order, `limit` at a time after the `offset`th: a snapshot read for `chat-admin migrate`.
    public func exportRows(of table: ExportedTable, offset: Int, limit: Int) async throws(StoreError) -> [[ColumnValue]] {
        let sql = "SELECT \(table.columns.joined(separator: ", ")) FROM \(table.name) ORDER BY \(table.key.joined(separator: ", ")) LIMIT ? OFFSET ?"
        do {
            return try await pool.read { db in
                try Row.fetchAll(db, sql: sql, arguments: [limit, offset]).map { row in
                    table.columns.map { column in
                        switch row[column] as DatabaseValue? {
                        case nil: return .null
                        case let value?:
                            switch value.storage {
                            case .null: return .null
                            case .int64(let integer): return .integer(integer)
                            case .double(let real): return .real(real)
                            case .string(let text): return .text(text)
                            case .blob(let data): return .bytes([UInt8](data))
                            }
                        }
                    }
                }
            }
        } catch {
            throw .wrap(error)
        }
    }

    /// Number of rows of `table`.
    public func rowCount(of table: ExportedTable) async throws(StoreError) -> Int {
        do {
            return try await pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM \(table.name)") ?? 0 }
        } catch {
            throw .wrap(error)
        }
    }
}
