// Media frames: uploads over the chat WebSocket and attachments on messages. docs/PROTOCOL.md (Attachments) describes them.

// MARK: - Client to server

/// Starts an upload. The server answers `uploadReady` with the upload's id; the bytes follow as binary frames.
/// `name` is the file's name as the user knows it (sanitised by the server for display); `size` is the exact number
/// of bytes that will follow; `sha256` (lowercase hex), when given, is checked against the bytes received.
public struct UploadBegin: Codable, Sendable, Equatable {
    public var requestId: String?
    public var name: String
    public var size: Int
    public var sha256: String?

    public init(requestId: String? = nil, name: String, size: Int, sha256: String? = nil) {
        self.requestId = requestId
        self.name = name
        self.size = size
        self.sha256 = sha256
    }
}

/// Resumes an upload interrupted by a dropped connection. The server answers `uploadReady` with the offset from which
/// to send the remaining bytes; the upload becomes this connection's current upload.
public struct UploadResume: Codable, Sendable, Equatable {
    public var uploadId: String
    public var requestId: String?

    public init(uploadId: String, requestId: String? = nil) {
        self.uploadId = uploadId
        self.requestId = requestId
    }
}

/// Ends (`uploadEnd`) or abandons (`uploadCancel`) an upload.
public struct UploadReference: Codable, Sendable, Equatable {
    public var uploadId: String

    public init(uploadId: String) {
        self.uploadId = uploadId
    }
}

/// An attachment of a `send`: a finished upload of the sender, named by its upload id or by its hash.
public struct AttachmentReference: Codable, Sendable, Equatable {
    public var uploadId: String?
    public var sha256: String?

    public init(uploadId: String? = nil, sha256: String? = nil) {
        self.uploadId = uploadId
        self.sha256 = sha256
    }
}

// MARK: - Server to client

/// "Send bytes from `offset` on." Answers `uploadBegin` (offset 0) and `uploadResume`.
public struct UploadReady: Codable, Sendable, Equatable {
    public var requestId: String?
    public var uploadId: String
    public var offset: Int
    /// Recommended binary frame size; frames may be smaller, never over `limits.maxFrameBytes`.
    public var chunkSize: Int
    /// How long after a dropped connection the upload can be resumed.
    public var resumeWindowMs: Int

    public init(requestId: String?, uploadId: String, offset: Int, chunkSize: Int, resumeWindowMs: Int) {
        self.requestId = requestId
        self.uploadId = uploadId
        self.offset = offset
        self.chunkSize = chunkSize
        self.resumeWindowMs = resumeWindowMs
    }
}

/// "Bytes up to `offset` are written." Sent about every MiB and when all declared bytes have arrived.
public struct UploadProgress: Codable, Sendable, Equatable {
    public var uploadId: String
    public var offset: Int

    public init(uploadId: String, offset: Int) {
        self.uploadId = uploadId
        self.offset = offset
    }
}

/// A thumbnail the server made of an image attachment; fetch it from `/media/{sha256}/thumbnail/{size}`.
public struct ThumbnailInfo: Codable, Sendable, Equatable {
    /// `crop96`, `fit320`, `fit800`.
    public var size: String
    public var type: String
    public var width: Int
    public var height: Int

    public init(size: String, type: String, width: Int, height: Int) {
        self.size = size
        self.type = type
        self.width = width
        self.height = height
    }
}

/// A stored file as recipients see it on a message, and as the uploader sees it in `uploadDone`.
public struct Attachment: Codable, Sendable, Equatable {
    /// Lowercase hex SHA-256 of the bytes: fetch them from `/media/{sha256}`.
    public var sha256: String
    /// The uploader's file name, sanitised for display (no path separators or control characters, at most 255
    /// bytes).
    public var name: String
    /// MIME type sniffed from the bytes (never the name or the client's claim).
    public var type: String
    public var size: Int
    public var width: Int?
    public var height: Int?
    public var thumbnails: [ThumbnailInfo]
    /// The name's extension does not fit the sniffed type (e.g. an executable called `photo.jpg`): show it as such.
    public var nameMismatch: Bool
    /// `true` when an operator removed the bytes (pruned as old, or set aside as corrupted). Name, type and size
    /// stay; show the attachment as "expired" (never as an error). Downloads answer 410 Gone; thumbnails that were
    /// kept are still listed. Absent otherwise.
    public var expired: Bool?
    /// JPEG and PNG: `true` when the stored file holds no location, device or other private metadata (the server
    /// removed it, keeping the orientation and colour profile; `sha256` is then the cleaned bytes'); `false` when
    /// the server could not clean the file and stored it as sent. Absent for other types, or when the server keeps
    /// metadata.
    public var metadataRemoved: Bool?
    /// GIF and WebP animations: `true`, with `frames` their frame count (at least that many when the count stopped
    /// at the server's limit). Absent for still images.
    public var animated: Bool?
    public var frames: Int?
    /// Audio and video: the playing time in milliseconds, when the container says it (MP4/MOV, WebM/Matroska, MP3,
    /// Ogg Vorbis/Opus, WAV). Absent otherwise.
    public var durationMs: Int?

    public init(sha256: String, name: String, type: String, size: Int, width: Int? = nil, height: Int? = nil,
                thumbnails: [ThumbnailInfo] = [], nameMismatch: Bool = false, expired: Bool? = nil, metadataRemoved: Bool? = nil,
                frames: Int? = nil, durationMs: Int? = nil) {
        self.sha256 = sha256
        self.name = name
        self.type = type
        self.size = size
        self.width = width
        self.height = height
        self.thumbnails = thumbnails
        self.nameMismatch = nameMismatch
        self.expired = expired
        self.metadataRemoved = metadataRemoved
        // A still image (one frame) says nothing.
        let animated = (frames ?? 0) > 1
        self.animated = animated ? true : nil
        self.frames = animated ? frames : nil
        self.durationMs = durationMs
    }
}

/// The upload is stored and its thumbnails exist: attach it to a `send` by `uploadId` or `sha256`.
public struct UploadDone: Codable, Sendable, Equatable {
    public var requestId: String?
    public var uploadId: String
    public var attachment: Attachment
    /// The same bytes were stored before (by anyone): nothing new was written.
    public var duplicate: Bool

    public init(requestId: String? = nil, uploadId: String, attachment: Attachment, duplicate: Bool) {
        self.requestId = requestId
        self.uploadId = uploadId
        self.attachment = attachment
        self.duplicate = duplicate
    }
}

/// Hex SHA-256 checks shared by server and clients.
public enum Hashes {
    /// 64 hex digits. Uppercase is accepted; compare after `normalized`.
    public static func isValidSHA256(_ hex: String) -> Bool {
        hex.utf8.count == 64 && hex.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x66) }
    }

    public static func normalized(_ hex: String) -> String { hex.lowercased() }
}
