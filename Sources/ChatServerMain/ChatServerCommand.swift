import ArgumentParser
import ChatServer
import ChatStore
import Foundation
import Logging
import MediaStore

/// `chat-server`: argument parsing and wiring only; the server lives in the ChatServer module.
@main
struct ChatServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat-server",
        abstract: "Real-time customer-support chat server (WebSocket at /ws, /healthz, /metrics).",
        discussion: """
            Every option can also be set by the environment variable named in its help; a flag wins over the \
            variable. With no options the server listens on 127.0.0.1:8080 and keeps chat.sqlite and media/ in the \
            working directory. SIGINT or SIGTERM shut it down gracefully.
            """
    )

    private static func env(_ name: String) -> String? { ProcessInfo.processInfo.environment[name] }

    @Option(help: "Address to listen on (CHAT_HOST).")
    var host: String = env("CHAT_HOST") ?? "127.0.0.1"

    @Option(help: "TCP port; 0 picks a free one and logs it (CHAT_PORT).")
    var port: Int = env("CHAT_PORT").flatMap(Int.init) ?? 8080

    @Option(name: .customLong("data-dir"), help: "Directory for chat.sqlite (CHAT_DATA_DIR).")
    var dataDirectory: String = env("CHAT_DATA_DIR") ?? "."

    @Option(name: .customLong("media-dir"), help: "Media store directory; default: media/ under --data-dir (CHAT_MEDIA_DIR).")
    var mediaDirectory: String?

    @Option(name: .customLong("media-store"), help: "Keep media in an S3-compatible bucket instead of --media-dir (which then only holds uploads in progress): s3://BUCKET/PREFIX?endpoint=http://HOST:PORT&region=REGION; credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or ~/.aws/credentials (CHAT_MEDIA_STORE).")
    var mediaStore: String?

    @Option(help: "PostgreSQL database shared by several nodes: postgres://USER[:PASSWORD]@HOST[:PORT]/DB; the password may instead come from PGPASSWORD or ?passwordFile=PATH. Default: chat.sqlite in --data-dir (CHAT_DATABASE).")
    var database: String?

    @Option(name: .customLong("database-timeout"), help: "Seconds one PostgreSQL operation may take before it fails and a send gets store_failed (CHAT_DATABASE_TIMEOUT).")
    var databaseTimeout: Int = env("CHAT_DATABASE_TIMEOUT").flatMap(Int.init) ?? 5

    @Option(help: "Commit durability: 'full' survives power loss, 'normal' survives a process crash (CHAT_DURABILITY).")
    var durability: String = env("CHAT_DURABILITY") ?? "full"

    @Option(name: .customLong("max-text-bytes"), help: "Longest message text in UTF-8 bytes (CHAT_MAX_TEXT_BYTES).")
    var maxTextBytes: Int = env("CHAT_MAX_TEXT_BYTES").flatMap(Int.init) ?? 64 * 1024

    @Option(name: .customLong("rate"), help: "Frames per second allowed per connection, sustained (CHAT_RATE).")
    var messagesPerSecond: Double = env("CHAT_RATE").flatMap(Double.init) ?? 50

    @Option(help: "Frames a connection may send at once above the rate (CHAT_BURST).")
    var burst: Int = env("CHAT_BURST").flatMap(Int.init) ?? 100

    @Option(name: .customLong("outbound-buffer"), help: "Bytes waiting to be sent to one connection before it is disconnected as a slow reader (CHAT_OUTBOUND_BUFFER).")
    var outboundBuffer: Int = env("CHAT_OUTBOUND_BUFFER").flatMap(Int.init) ?? 16 << 20

    @Option(name: .customLong("ping-interval"), help: "Keep-alive period in seconds: a silent connection is pinged, and closed if it stays silent another period (CHAT_PING_INTERVAL).")
    var pingInterval: Int = env("CHAT_PING_INTERVAL").flatMap(Int.init) ?? 30

    @Option(name: .customLong("max-upload-bytes"), help: "Largest file accepted, in bytes (CHAT_MAX_UPLOAD_BYTES; default 100 MiB).")
    var maxUploadBytes: Int = env("CHAT_MAX_UPLOAD_BYTES").flatMap(Int.init) ?? 100 << 20

    @Option(name: .customLong("max-uploads-in-flight"), help: "Uploads a user may have in progress at once, interrupted ones included (CHAT_MAX_UPLOADS_IN_FLIGHT).")
    var maxUploadsInFlight: Int = env("CHAT_MAX_UPLOADS_IN_FLIGHT").flatMap(Int.init) ?? 4

    @Option(name: .customLong("upload-bytes-per-day"), help: "Bytes a user may upload per UTC day (CHAT_UPLOAD_BYTES_PER_DAY; default 2 GiB).")
    var uploadBytesPerDay: Int = env("CHAT_UPLOAD_BYTES_PER_DAY").flatMap(Int.init) ?? 2 << 30

    @Option(name: .customLong("upload-resume-window"), help: "Seconds an interrupted upload can be resumed before its temporary file is removed (CHAT_UPLOAD_RESUME_WINDOW).")
    var uploadResumeWindow: Int = env("CHAT_UPLOAD_RESUME_WINDOW").flatMap(Int.init) ?? 600

    @Flag(name: .customLong("keep-image-metadata"), help: "Store JPEG and PNG uploads as sent, with their location and device metadata; by default it is removed at upload (CHAT_KEEP_IMAGE_METADATA=1).")
    var keepImageMetadata = false

    @Option(name: .customLong("uncleanable-images"), help: "An image whose metadata cannot be removed safely (malformed EXIF, truncated segments): 'store' it as sent, flagged as not cleaned, or 'refuse' the upload (CHAT_UNCLEANABLE_IMAGES).")
    var uncleanableImages: String = env("CHAT_UNCLEANABLE_IMAGES") ?? UncleanableImages.store.rawValue

    @Option(name: .customLong("tls-cert"), help: "PEM certificate chain; with --tls-key the server speaks TLS (wss://) (CHAT_TLS_CERT).")
    var tlsCertificate: String?

    @Option(name: .customLong("tls-key"), help: "PEM private key for --tls-cert (CHAT_TLS_KEY).")
    var tlsKey: String?

    @Option(name: .customLong("auto-assign"), help: "Assign conversations nobody has to an online agent when their customer writes: round-robin (fewest open conversations first, in turn among equals) (CHAT_AUTO_ASSIGN).")
    var autoAssign: String?

    @Option(name: .customLong("auto-assign-limit"), help: "Open conversations an agent may have before automatic assignment passes them over (CHAT_AUTO_ASSIGN_LIMIT).")
    var autoAssignLimit: Int = env("CHAT_AUTO_ASSIGN_LIMIT").flatMap(Int.init) ?? 10

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical (CHAT_LOG_LEVEL).")
    var logLevel: String = env("CHAT_LOG_LEVEL") ?? "info"

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be between 0 and 65535") }
        guard ChatDatabase.Durability(rawValue: durability) != nil else { throw ValidationError("--durability must be full or normal") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level: unknown level \(logLevel)") }
        guard maxTextBytes > 0, messagesPerSecond > 0, burst > 0, outboundBuffer > 0, pingInterval > 0, maxUploadBytes > 0,
              maxUploadsInFlight > 0, uploadBytesPerDay > 0, uploadResumeWindow > 0, databaseTimeout > 0 else {
            throw ValidationError("limits must be positive")
        }
        if let autoAssign = autoAssign ?? Self.env("CHAT_AUTO_ASSIGN"), AutoAssignPolicy(rawValue: autoAssign) == nil {
            throw ValidationError("--auto-assign must be \(AutoAssignPolicy.allCases.map(\.rawValue).joined(separator: " or "))")
        }
        guard autoAssignLimit > 0 else { throw ValidationError("--auto-assign-limit must be positive") }
        guard UncleanableImages(rawValue: uncleanableImages) != nil else {
            throw ValidationError("--uncleanable-images must be store or refuse")
        }
        guard (resolvedCertificate == nil) == (resolvedKey == nil) else { throw ValidationError("give both --tls-cert and --tls-key, or neither") }
    }

    private var resolvedCertificate: String? { tlsCertificate ?? Self.env("CHAT_TLS_CERT") }
    private var resolvedKey: String? { tlsKey ?? Self.env("CHAT_TLS_KEY") }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "chat-server")

        var configuration = ServerConfiguration()
        configuration.host = host
        configuration.port = port
        configuration.dataDirectory = dataDirectory
        configuration.mediaDirectory = mediaDirectory ?? Self.env("CHAT_MEDIA_DIR")
        configuration.durability = ChatDatabase.Durability(rawValue: durability) ?? .full
        configuration.database = database ?? Self.env("CHAT_DATABASE")
        if let store = mediaStore ?? Self.env("CHAT_MEDIA_STORE"), !store.isEmpty {
            configuration.objectStore = try ServerConfiguration.objectStore(store)
        }
        configuration.databaseTimeout = .seconds(databaseTimeout)
        configuration.maxTextBytes = maxTextBytes
        configuration.messagesPerSecond = messagesPerSecond
        configuration.burst = burst
        configuration.outboundBufferBytes = outboundBuffer
        configuration.pingInterval = .seconds(pingInterval)
        configuration.autoAssign = (autoAssign ?? Self.env("CHAT_AUTO_ASSIGN")).flatMap(AutoAssignPolicy.init(rawValue:))
        configuration.autoAssignLimit = autoAssignLimit
        configuration.media.maxUploadBytes = maxUploadBytes
        configuration.media.maxUploadsInFlight = maxUploadsInFlight
        configuration.media.bytesPerDay = uploadBytesPerDay
        configuration.media.resumeWindow = .seconds(uploadResumeWindow)
        configuration.media.imageMetadata = keepImageMetadata || Self.env("CHAT_KEEP_IMAGE_METADATA") == "1"
            ? .keep : .remove(uncleanable: UncleanableImages(rawValue: uncleanableImages) ?? .store)
        configuration.tlsCertificatePath = resolvedCertificate
        configuration.tlsKeyPath = resolvedKey

        let scheme = resolvedCertificate == nil ? "ws" : "wss"
        let host = self.host
        let group = try await ChatServer(configuration: configuration, logger: logger).makeServiceGroup { port in
            logger.notice("chat server listening", metadata: ["url": "\(scheme)://\(host):\(port)/ws", "port": "\(port)"])
        }
        try await group.run()
    }
}
