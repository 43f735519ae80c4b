import ChatStore
import Foundation
import MediaObjectStore
import MediaStore
import ObjectStorage

/// Everything the server can be told. `chat-server --help` explains each; defaults suit one machine.
public struct ServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    /// 0 picks a free port (tests); the bound port is reported by `ChatServer.run(onListening:)`.
    public var port = 8080
    /// Holds `chat.sqlite` (and its WAL files). The working directory by default.
    public var dataDirectory = "."
    /// The content-addressed media store. `media/` under the data directory by default.
    public var mediaDirectory: String?
    /// Blobs and thumbnails in an S3-compatible bucket (`--media-store s3://...`) instead of the media directory, which
    /// then only spools uploads in progress (`tmp/`). Nil: the media directory holds everything.
    public var objectStore: S3Configuration?
    public var durability: ChatDatabase.Durability = .full
    /// A PostgreSQL URL (`postgres://USER[:PASSWORD]@HOST[:PORT]/DB`) for several nodes sharing one database; nil:
    /// the SQLite file in the data directory.
    public var database: String?
    /// How long one PostgreSQL operation may take before it fails (a send then gets `store_failed`).
    public var databaseTimeout: Duration = .seconds(5)

    /// Longest message text in UTF-8 bytes; longer ones get `too_large`.
    public var maxTextBytes = 64 * 1024
    /// Frames larger than this close the connection with 1009 (the hard limit).
    public var maxFrameBytes = 1024 * 1024
    /// Sustained frames per second per connection, and the burst allowed above it.
    public var messagesPerSecond = 50.0
    public var burst = 100
    /// Rejected frames within `floodWindow` past which the connection is closed with 4008.
    public var floodThreshold = 200
    public var floodWindow: Duration = .seconds(10)
    /// Bytes waiting to be sent to one connection before it counts as a slow reader and is closed with 4009 (also
    /// the bound on what waits for a connection while it replays its backlog). Larger than the largest frame the
    /// server sends (a full history page), so a client busy downloading one is not mistaken for a stalled one.
    public var outboundBufferBytes = 16 << 20
    /// How long a new connection has to send `hello`.
    public var helloTimeout: Duration = .seconds(10)
    /// Keep-alive period: a connection silent for a whole period is pinged, and closed if it stays silent for the
    /// next one too (see `KeepAlive`).
    public var pingInterval: Duration = .seconds(30)
    /// Automatic assignment of conversations nobody has, when their customer writes; nil: agents assign by hand.
    public var autoAssign: AutoAssignPolicy?
    /// Open conversations an agent may have before automatic assignment passes them over.
    public var autoAssignLimit = 10
    public var historyPageDefault = 50
    public var historyPageMax = 200
    /// Messages waiting for the group commit past which new sends get `store_failed` (back-pressure).
    public var maxPendingWrites = 50_000
    /// How often to look for tokens revoked by `chat-admin`.
    public var revocationPollInterval: Duration = .milliseconds(500)

    /// Media limits: largest upload, uploads in progress per user, bytes per user per UTC day, resume window.
    public var media = MediaLimits()
    /// How often interrupted uploads past their resume window are removed.
    public var mediaSweepInterval: Duration = .seconds(30)
    /// How the media store writes files (tests substitute a failing one to act out a full disk).
    public var mediaFileWriter: any MediaFileWriter = POSIXFileWriter()

    /// PEM certificate chain and private key: both set means the server speaks TLS (wss://).
    public var tlsCertificatePath: String?
    public var tlsKeyPath: String?

    public init() {}

    public var databasePath: String { DataDirectory(dataDirectory).databasePath }

    public var resolvedMediaDirectory: String { mediaDirectory ?? DataDirectory(dataDirectory).mediaPath }
}

extension ServerConfiguration {
    /// The object store of `--media-store` / `CHAT_MEDIA_STORE` (`s3://BUCKET/PREFIX?endpoint=...&region=...`), with
    /// credentials from the environment or the shared credentials file, never from the URL.
    public static func objectStore(_ text: String, environment: [String: String] = ProcessInfo.processInfo.environment)
        throws(ServerStartError) -> S3Configuration {
        do {
            return try S3Configuration.mediaStore(text, environment: environment)
        } catch {
            throw .objectStore(error)
        }
    }
}
