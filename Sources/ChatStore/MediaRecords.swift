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
    /// Private image metadata: removed (true), could not be (false), not applicable (nil). See `Attachment`.
    public var metadataRemoved: Bool?
    /// Frames of an animated GIF or WebP; nil for still images and other types.
    public var frames: Int?
    /// Audio and video playing time, when the container says it cheaply.
    public var durationMs: Int?

    public init(hash: String, size: Int, mimeType: String, width: Int? = nil, height: Int? = nil, thumbnails: [ThumbnailInfo] = [],
                state: BlobState = .present, metadataRemoved: Bool? = nil, frames: Int? = nil,
                durationMs: Int? = nil) {
        self.hash = hash
        self.size = size
        self.mimeType = mimeType
        self.width = width
        self.height = height
        self.thumbnails = thumbnails
        self.state = state
        self.metadataRemoved = metadataRemoved
        self.frames = frames
        self.durationMs = durationMs
    }

    public func attachment(name: String, nameMismatch: Bool) -> Attachment {
        Attachment(sha256: hash, name: name, type: mimeType, size: size, width: width, height: height,
                   thumbnails: thumbnails, nameMismatch: nameMismatch, expired: state == .present ? nil : true,
                   metadataRemoved: metadataRemoved, frames: frames, durationMs: durationMs)
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
    /// The hash whose bytes it is putting into an object store now (`PendingDeletion`'s hold), if any.
    public var storingHash: String? = nil
}

extension BlobRecord {
    /// From a row with the `blobs` columns, read by name.
    init(row: Row) {
        self.init(hash: row["hash"], size: row["size"], mimeType: row["mime_type"], width: row["width"], height: row["height"],
                  thumbnails: MediaCatalogRows.decodeThumbnails(row["thumbnails"] ?? "[]"),
                  state: BlobState(rawValue: row["state"] ?? "present") ?? .present, metadataRemoved: row["metadata_removed"],
                  frames: row["frames"], durationMs: row["duration_ms"])
    }
}

extension UploadRecord {
    public init(id: String, username: String, name: String, declaredSize: Int?, declaredSHA256: String?, createdAt: Int64) {
        self.init(id: id, username: username, name: name, declaredSize: declaredSize, declaredSHA256: declaredSHA256,
                  createdAt: createdAt, updatedAt: createdAt)
    }

    init(row: Row) {
        self.init(id: row["id"], username: row["username"], name: row["name"], declaredSize: row["declared_size"],
                  declaredSHA256: row["declared_sha256"], createdAt: row["created_at"], updatedAt: row["updated_at"],
                  storingHash: row["storing_hash"])
    }
}

/// Reading attachments and thumbnails from rows: shared by the media catalog and the message store. The thumbnails
/// column (JSON text) is public so that other databases' catalogs store it the same way.
public enum MediaCatalogRows {
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

    public static func encodeThumbnails(_ thumbnails: [ThumbnailInfo]) -> String {
        (try? JSONEncoder().encode(thumbnails)).map { String(decoding: $0, as: UTF8.self) } ?? "[]"
    }

    public static func decodeThumbnails(_ json: String) -> [ThumbnailInfo] {
        (try? JSONDecoder().decode([ThumbnailInfo].self, from: Data(json.utf8))) ?? []
    }
}
