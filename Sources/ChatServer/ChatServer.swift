import ChatProtocol
import ChatStore
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import HummingbirdWebSocket
import Logging
import MediaObjectStore
import MediaStore
import NIOCore
import ObjectStorage
import ServiceLifecycle
import UnixSignals

/// Why the server could not start.
public enum ServerStartError: Error, CustomStringConvertible {
    case dataDirectory(String, reason: String)
    case tls(String)
    case store(StoreError)
    case media(MediaError)
    /// `--media-store` cannot be used (a bad URL or no credentials); the error says which and how to fix it.
    case objectStore(ObjectStorageError)

    public var description: String {
        switch self {
        case .objectStore(let error): "cannot use the media store: \(error)"
        case .media(let error): "cannot open the media store: \(error)"
        case .dataDirectory(let path, let reason): "cannot use data directory \(path): \(reason)"
        case .tls(let reason): "cannot set up TLS: \(reason)"
        case .store(let error): error.description
        }
    }
}

/// The chat server: WebSocket endpoint `/ws`, `GET /healthz`, `GET /metrics`, and the media endpoints
/// (`POST /media`, `GET /media/{sha256}`, `GET /media/{sha256}/thumbnail/{size}`; see MediaRoutes).
///
/// `makeServiceGroup` wires everything; `ServiceGroup.run()` serves until a signal (or
/// `triggerGracefulShutdown()`), then stops accepting, commits and acknowledges what is in flight and closes every
/// connection with 1001 "going away".
public struct ChatServer: Sendable {
    public let configuration: ServerConfiguration
    let logger: Logger

    public init(configuration: ServerConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Builds the server. `onListening` gets the bound port once the socket listens (useful with port 0).
    public func makeServiceGroup(gracefulShutdownSignals: [UnixSignal] = [.sigterm, .sigint],
                                 onListening: @escaping @Sendable (Int) async -> Void = { _ in }) async throws -> ServiceGroup {
        let fileManager = FileManager.default
        for directory in [configuration.dataDirectory, configuration.resolvedMediaDirectory] {
            do {
                try fileManager.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw ServerStartError.dataDirectory(directory, reason: error.localizedDescription)
            }
        }
        let backend = try await StorageBackend.open(configuration, logger: logger)
        let storage = backend.storage
        let metrics = ChatMetrics()
        let roster: Roster
        do {
            roster = Roster(summaries: try await storage.messages.conversationSummaries(),
                            customers: try await storage.messages.customers(), markers: try await storage.readMarkers.readMarkers())
        } catch {
            throw ServerStartError.store(error)
        }
        let hub = Hub(metrics: metrics, syncBufferBytes: configuration.outboundBufferBytes, roster: roster)
        do {
            await hub.setCannedReplies(try await storage.canned.cannedReplies())
        } catch {
            throw ServerStartError.store(error)
        }
        let bus = backend.bus
        await bus.subscribe(hub)
        let writer = MessageWriter(store: storage.messages, bus: bus, metrics: metrics, logger: logger,
                                   maxPending: configuration.maxPendingWrites)
        if configuration.autoAssign != nil {
            await bus.subscribe(AutoAssigner(hub: hub, writer: writer, limit: configuration.autoAssignLimit))
        }
        let catalog = storage.catalog
        let media: MediaStore
        var objectStore: ObjectStoreClient?
        do {
            if let store = configuration.objectStore {
                let client = S3Client(configuration: store, logger: logger)
                objectStore = ObjectStoreClient(client: client)
                media = try MediaStore(layout: MediaLayout(directory: configuration.resolvedMediaDirectory),
                                       storage: S3BlobStorage(client: client), catalog: catalog, limits: configuration.media,
                                       writer: configuration.mediaFileWriter, logger: logger)
                logger.info("media in an object store", metadata: ["store": "\(store.location)"])
            } else {
                media = try MediaStore(directory: configuration.resolvedMediaDirectory, catalog: catalog, limits: configuration.media,
                                       writer: configuration.mediaFileWriter, logger: logger)
            }
            try await media.recover()
        } catch {
            try? await objectStore?.client.shutdown()
            throw ServerStartError.media(error)
        }
        let services = ChatServices(configuration: configuration, hub: hub, bus: bus, writer: writer, storage: storage,
                                    media: media, metrics: metrics, throttle: AuthThrottle(), logger: logger)

        let router = Router(context: ChatRequestContext.self)
        router.get("/healthz") { _, _ -> Response in
            let shuttingDown = await hub.isShuttingDown
            let body = #"{"status":"\#(shuttingDown ? "shutting_down" : "ok")","connections":\#(await hub.connectionCount)}"#
            return Response(status: shuttingDown ? .serviceUnavailable : .ok,
                            headers: [.contentType: "application/json"],
                            body: .init(byteBuffer: ByteBuffer(string: body)))
        }
        router.get("/metrics") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(string: metrics.exposition())))
        }

        MediaRoutes(services: services).register(on: router)

        let handler = ConnectionHandler(services: services)
        let webSocketRouter = Router(context: ChatRequestContext.self)
        webSocketRouter.ws("/ws") { inbound, outbound, context in
            await handler.handle(inbound: inbound, outbound: outbound, context: context)
        }
        let webSocketConfiguration = WebSocketServerConfiguration(
            maxFrameSize: configuration.maxFrameBytes,
            extensions: [.nonNegotiatedExtension { FastUnmasking() }],
            // Keep-alive is KeepAlive's: one timer per event loop instead of a task per connection.
            autoPing: .disabled,
            closeTimeout: .seconds(5)
        )
        let http1 = HTTP1Channel.Configuration(additionalChannelHandlers: [ExpectContinueHandler()])
        let webSocketResponder = webSocketRouter.buildResponder()
        let tls = try tlsConfiguration()
        let server = HTTPServerBuilder { responder in
            let plain = SmallReceiveBuffers(base: HTTP1WebSocketUpgradeChannel(
                responder: responder, webSocketResponder: webSocketResponder,
                configuration: .init(http1: http1, ws: webSocketConfiguration)))
            guard let tls else { return plain }
            return try TLSChannel(plain, tlsConfiguration: tls)
        }
        let app = Application(
            router: router,
            server: server,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: nil),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? 0) },
            logger: logger
        )
        let lifecycle = ChatLifecycle(hub: hub, bus: bus, writer: writer, tokens: storage.tokens, canned: storage.canned, logger: logger,
                                      pollInterval: configuration.revocationPollInterval)
        // Services stop in reverse order: the chat lifecycle first (commit in-flight messages, close sockets with
        // "going away"), then the HTTP server.
        // The object store's client is first, so it is shut down last, after the HTTP server.
        var group = ServiceGroupConfiguration(services: (objectStore.map { [$0 as any Service] } ?? []) + backend.services
                                                  + [app, lifecycle, MediaSweeper(media: media, interval: configuration.mediaSweepInterval)],
                                              gracefulShutdownSignals: gracefulShutdownSignals, logger: logger)
        // A service still stopping after this long is cancelled (ServiceLifecycle logs it); queued messages are
        // committed well within it. No bound on the cancellation itself: ServiceLifecycle ends that with a
        // fatalError, which in a process hosting several servers (the tests) takes every other one down too.
        group.maximumGracefulShutdownDuration = .seconds(30)
        return ServiceGroup(configuration: group)
    }

    private func tlsConfiguration() throws -> TLSConfiguration? {
        switch (configuration.tlsCertificatePath, configuration.tlsKeyPath) {
        case (nil, nil):
            return nil
        case (let cert?, let key?):
            do {
                let chain = try NIOSSLCertificate.fromPEMFile(cert)
                let privateKey = try NIOSSLPrivateKey(file: key, format: .pem)
                return TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) },
                                                                privateKey: .privateKey(privateKey))
            } catch {
                throw ServerStartError.tls("\(error) (certificate \(cert), key \(key))")
            }
        default:
            throw ServerStartError.tls("give both --tls-cert and --tls-key")
        }
    }
}

/// Runs beside the HTTP server: roster updates, and the watch that cuts sessions whose tokens `chat-admin`
/// revoked; on graceful shutdown commits what is queued and closes every connection with "going away".
struct ChatLifecycle: Service {
    let hub: Hub
    let bus: any DeliveryBus
    let writer: MessageWriter
    let tokens: any TokenStore
    let canned: any CannedReplyStore
    let logger: Logger
    let pollInterval: Duration

    func run() async throws {
        let hub = self.hub
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await hub.runRosterUpdates() }
            group.addTask { await hub.runSnoozeEnds() }
            group.addTask { await watchCannedReplies() }
            await cancelWhenGracefulShutdown { await watchRevocations() }
            group.cancelAll()
        }
        logger.info("shutting down: storing queued messages and closing connections")
        await writer.close()
        await hub.shutdown()
        let deadline = ContinuousClock.now + .seconds(5)
        while await hub.connectionCount > 0, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        logger.info("chat connections closed")
    }

    /// Keeps the hub's canned replies as `chat-admin canned` leaves them (another process, maybe another machine):
    /// a small table read every two seconds, until cancelled.
    private func watchCannedReplies() async {
        while !Task.isCancelled {
            do {
                await hub.setCannedReplies(try await canned.cannedReplies())
                try await Task.sleep(for: .seconds(2))
            } catch where !Task.isCancelled {
                logger.warning("reading canned replies failed", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .seconds(2))
            } catch {
                return
            }
        }
    }

    /// Polls the token store for revocations and publishes them, until cancelled. A revocation is timed when its
    /// statement runs, not when it commits, so one that commits late carries a time before the newest already seen;
    /// each look therefore goes back `revocationOverlap` before the previous one (on the store's clock), and only ids
    /// not published by the previous look are published (a token is revoked once, so an id that left the window does
    /// not come back).
    private func watchRevocations() async {
        var since = Int64.max  // the first look only reads the store's clock
        var published: Set<Int64> = []
        let overlap = Self.revocationOverlap.components.seconds * 1000
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: pollInterval)
                let revoked = try await tokens.revokedSessions(since: since)
                let ids = Set(revoked.ids)
                let new = ids.subtracting(published)
                if !new.isEmpty { await bus.publish(.revoked(sessions: new)) }
                published = ids
                since = revoked.checkedAt - overlap
            } catch where !Task.isCancelled {  // cancelled: the server is stopping, nothing went wrong
                logger.warning("checking for revoked tokens failed", metadata: ["error": "\(error)"])
            } catch {
                return
            }
        }
    }

    /// How far back each look for revocations reaches before the previous one: longer than any revoking transaction
    /// takes to commit.
    static let revocationOverlap: Duration = .seconds(60)
}

/// Shuts the object store's HTTP client down when the server stops (it must be, exactly once).
struct ObjectStoreClient: Service {
    let client: S3Client

    func run() async throws {
        try? await gracefulShutdown()
        try await client.shutdown()
    }
}
