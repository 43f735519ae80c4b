import ChatProtocol
import ChatStore

/// Media limits; `chat-server` flags set them and `welcome` tells them to clients.
public struct MediaLimits: Sendable {
    /// Largest file accepted.
    public var maxUploadBytes = 100 << 20
    /// Uploads a user may have in progress at once (interrupted ones count until they expire).
    public var maxUploadsInFlight = 4
    /// Bytes a user may upload per UTC day.
    public var bytesPerDay = 2 << 30
    /// How long an interrupted upload may be resumed; after that its temporary file is removed.
    public var resumeWindow: Duration = .seconds(600)
    /// Recommended binary frame size for WebSocket uploads.
    public var chunkSize = 512 * 1024
    /// A progress acknowledgement is sent each time this many more bytes are written.
    public var progressInterval = 1 << 20
    /// Location and device metadata removed from JPEG and PNG at ingest, or kept.
    public var imageMetadata = ImageMetadataPolicy.default

    public init() {}
}

/// The right to write to one upload, held by one connection (or HTTP request) at a time. A resume from another
/// connection takes the upload over; the old handle stops working.
public struct UploadHandle: Sendable, Hashable {
    public let id: String
    public let user: String
    let claim: UInt64
}

/// Where to continue an upload.
public struct UploadPosition: Sendable, Equatable {
    public var handle: UploadHandle
    public var offset: Int
    /// The size announced at `begin`, if any: a resumed upload is acknowledged at its end by it, as a new one is.
    public var declaredSize: Int?
}

/// A finished upload.
public struct UploadOutcome: Sendable, Equatable {
    public var uploadId: String
    public var attachment: Attachment
    /// The bytes were already stored (by anyone): nothing new was written.
    public var duplicate: Bool
}

