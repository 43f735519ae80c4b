import ChatProtocol
import ChatStore
import Foundation
import Hummingbird
import HummingbirdWebSocket
import Logging
import MediaStore
import NIOCore
import NIOWebSocket

/// Request context that remembers the peer address, for throttling failed authentications.
struct ChatRequestContext: RequestContext, WebSocketRequestContext {
    var coreContext: CoreRequestContextStorage
    let webSocket: WebSocketHandlerReference<Self>
    let peerAddress: String
    /// The connection's channel, to shut it when a client stops reading (see `Outbox`).
    let channel: any Channel
    /// The token's user, on routes behind `TokenAuthentication`.
    var user: SessionRecord?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        webSocket = .init()
        peerAddress = source.channel.remoteAddress?.ipAddress ?? "unknown"
        channel = source.channel
    }
}

/// The server's shared parts, handed to every connection. A class: each connection's async frames hold it
/// several times, and as a struct (the configuration alone has 25 fields) it made every idle connection larger.
final class ChatServices: Sendable {
    let configuration: ServerConfiguration
    let hub: Hub
    let writer: MessageWriter
    let bus: any DeliveryBus
    let tokens: any TokenStore
    let messages: any MessageStore
    let readMarkers: any ReadMarkerStore
    let search: any MessageSearch
    let media: MediaStore
    let catalog: any MediaCatalog
    let metrics: ChatMetrics
    let throttle: AuthThrottle
    let logger: Logger
    let keepAlive: KeepAlive

    init(configuration: ServerConfiguration, hub: Hub, bus: any DeliveryBus, writer: MessageWriter, storage: ChatStorage,
         media: MediaStore, metrics: ChatMetrics, throttle: AuthThrottle, logger: Logger) {
        self.configuration = configuration
        self.hub = hub
        self.bus = bus
        self.writer = writer
        tokens = storage.tokens
        messages = storage.messages
        readMarkers = storage.readMarkers
        search = storage.search
        self.media = media
        catalog = storage.catalog
        self.metrics = metrics
        self.throttle = throttle
        self.logger = logger
        keepAlive = KeepAlive(interval: TimeAmount(configuration.pingInterval))
    }
}

/// Runs one WebSocket connection: hello and authentication, backlog replay, then the frame loop.
///
/// Sequence on a new connection: the client sends `hello`; the server checks the token (from the upgrade request's
/// `Authorization: Bearer` header or the hello), answers `welcome` (and `roster` for agents), replays what the client
/// missed, sends `synced`, and from then on frames flow both ways. See docs/PROTOCOL.md.
struct ConnectionHandler: Sendable {
    let services: ChatServices
    private var configuration: ServerConfiguration { services.configuration }

    /// Kept small on purpose, like the functions it calls while a connection waits: each suspended async function
    /// keeps its whole frame in the connection's task for as long as the connection lives, and an idle connection
    /// waits here. So the work happens in callees that return (`prepare`) or run in a child task (`open`), and the
    /// wait for frames in `serve`, which holds only what the frame loop needs.
    func handle(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter,
                context: WebSocketRouterContext<ChatRequestContext>) async {
        await prepare(context.requestContext.channel)
        var frames = inbound.messages(maxSize: configuration.maxFrameBytes).makeAsyncIterator()
        guard let first = await firstFrame(&frames, outbound: outbound),
              let (connection, expiresAt) = await openInChildTask(first: first, outbound: outbound, context: context)
        else { return }
        await serve(connection, expiresAt: expiresAt, frames: &frames)
    }

    /// Adds the connection's channel handlers and sets its outbound bound.
    @inline(never)
    private func prepare(_ channel: any Channel) async {
        let bufferBytes = configuration.outboundBufferBytes
        let keepAlive = services.keepAlive
        try? await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.addHandler(FlushCoalescingHandler(), position: .first)
            try keepAlive.install(on: channel)
            // The outbound buffer's bound (see `Outbox`).
            try channel.syncOptions?.setOption(.writeBufferWaterMark, value: .init(low: bufferBytes / 2, high: bufferBytes))
        }.get()
    }

    /// Opening runs as a child task: the memory a task's frames once needed stays with the task until it ends, and
    /// authentication, welcome and replay need far more than waiting for frames does (see the idle-memory notes in
    /// BENCHMARKS.md).
    @inline(never)
    private func openInChildTask(first: WebSocketMessage, outbound: WebSocketOutboundWriter,
                                 context: WebSocketRouterContext<ChatRequestContext>) async -> (Connection, expiresAt: Int64?)? {
        await withTaskGroup(of: (Connection, expiresAt: Int64?)?.self) { group in
            group.addTask { await self.open(first: first, outbound: outbound, context: context) }
            return await group.next() ?? nil
        }
    }

    /// The frame loop of an admitted connection, until it ends.
    @inline(never)
    private func serve(_ connection: Connection, expiresAt: Int64?,
                       frames: inout WebSocketInboundMessageStream.AsyncIterator) async {
        log("connected", connection)
        let expiry = scheduleExpiry(of: connection, at: expiresAt)
        var dispatcher = FrameDispatcher(connection: connection, services: services)
        while let message = await Self.next(&frames) {
            await dispatcher.receive(message)
        }
        await dispatcher.connectionEnded()
        connection.outbox.finish()
        expiry?.cancel()
        await leave(connection)
        log("disconnected", connection)
    }

    /// Unregisters a connection; the user's last one here makes them offline on this node.
    @inline(never)
    private func leave(_ connection: Connection) async {
        guard await services.hub.unregister(connection) else { return }
        await services.bus.publish(.presence(PresenceChange(user: connection.user, role: connection.role, online: false,
                                                            node: services.bus.node)))
    }

    /// Metadata per message rather than a logger with metadata kept for the connection's life: that one would hold a
    /// dictionary per idle connection. Not inlined: its temporaries would enlarge `serve`'s frame.
    @inline(never)
    private func log(_ event: Logger.Message, _ connection: Connection) {
        services.logger.debug(event, metadata: ["user": "\(connection.user)", "connection": "\(connection.id)",
                                                "role": "\(connection.role.rawValue)"])
    }

    /// The next message, or nil when the connection ended (cleanly or not).
    private static func next(_ frames: inout WebSocketInboundMessageStream.AsyncIterator) async -> WebSocketMessage? {
        do { return try await frames.next() } catch { return nil }
    }

    // MARK: Opening

    /// The first frame, which must come within the hello timeout; nil when the connection ended first.
    private func firstFrame(_ frames: inout WebSocketInboundMessageStream.AsyncIterator,
                            outbound: WebSocketOutboundWriter) async -> WebSocketMessage? {
        let helloTimer = Task {
            try await Task.sleep(for: configuration.helloTimeout)
            try? await Self.close(outbound, code: CloseCode.helloExpected, reason: "no hello frame within \(configuration.helloTimeout)")
        }
        let first = try? await frames.next()
        helloTimer.cancel()
        return first ?? nil
    }

    /// Hello, authentication, welcome and backlog. Returns nil after closing the socket when the connection may
    /// not go on.
    private func open(first: WebSocketMessage, outbound: WebSocketOutboundWriter,
                      context: WebSocketRouterContext<ChatRequestContext>) async -> (Connection, expiresAt: Int64?)? {
        guard case .text(let text) = first, case .hello(let hello)? = try? FrameCodec().decodeClientFrame(Data(text.utf8)) else {
            try? await Self.close(outbound, code: CloseCode.helloExpected, reason: "the first frame must be a hello frame")
            return nil
        }
        guard let version = hello.protocolVersions.filter(ProtocolVersion.supported.contains).max() else {
            try? await Self.close(outbound, code: CloseCode.unsupportedProtocol,
                                  reason: "no common protocol version: this server speaks \(ProtocolVersion.supported.sorted())")
            return nil
        }

        let token = hello.token ?? Self.bearerToken(in: context.request.headers[.authorization])
        let session: SessionRecord
        switch await services.authenticate(token: token, username: hello.user, from: context.requestContext.peerAddress) {
        case .accepted(let record):
            session = record
        case .refused(let failure):
            try? await Self.close(outbound, code: CloseCode.authenticationFailed, reason: failure.description)
            return nil
        case .unavailable:
            try? await Self.close(outbound, code: CloseCode.goingAway, reason: "cannot check tokens right now; retry later")
            return nil
        }

        let hub = services.hub
        let channel = context.requestContext.channel
        let metrics = services.metrics
        let outbox = Outbox(channel: channel) { request in
            // Counted here, once per connection, whether the buffer filled during the backlog replay or after it.
            if request.code == CloseCode.slowConsumer { metrics.slowConsumerDisconnects.increment() }
            Task { try? await Self.close(outbound, code: request.code, reason: request.reason) }
            // Give the close handshake a moment; a client that does not even read the close frame is cut off (its
            // close frame may wait forever behind a full buffer).
            Task {
                try? await Task.sleep(for: request.drain ? .seconds(5) : .seconds(2))
                try? await channel.close()
            }
        }
        let connection = Connection(id: await hub.makeConnectionId(), user: session.username, role: session.role,
                                    sessionId: session.id, outbox: outbox)
        guard let (roster, firstOfUser) = await hub.register(connection) else {
            try? await Self.close(outbound, code: CloseCode.goingAway, reason: "server shutting down; reconnect later")
            return nil
        }
        if firstOfUser {
            await services.bus.publish(.presence(PresenceChange(user: connection.user, role: connection.role, online: true,
                                                                node: services.bus.node)))
        }
        do {
            let limits = Limits(maxTextBytes: configuration.maxTextBytes, messagesPerSecond: configuration.messagesPerSecond,
                                burst: configuration.burst, historyPageMax: configuration.historyPageMax,
                                maxUploadBytes: configuration.media.maxUploadBytes,
                                maxUploadsInFlight: configuration.media.maxUploadsInFlight,
                                uploadBytesPerDay: configuration.media.bytesPerDay, maxFrameBytes: configuration.maxFrameBytes)
            try await Self.write(.welcome(Welcome(protocolVersion: version, user: session.username, role: session.role,
                                                  limits: limits, serverTime: epochMilliseconds())), to: outbound)
            if session.role == .agent {
                try await Self.write(.roster(roster), to: outbound)
                try await Self.write(.cannedReplies(CannedReplies(replies: await hub.cannedReplies ?? [])), to: outbound)
            } else {
                try await Self.write(.presence(Presence(agentsOnline: await hub.agentsOnline)), to: outbound)
            }
            var replayed: [String: Int] = [:]
            switch session.role {
            case .customer:
                if let lastSeq = hello.lastSeq {
                    replayed[session.username] = try await replay(session.username, after: lastSeq, for: .customer, to: outbound)
                }
            case .agent:
                for (customer, lastSeq) in (hello.lastSeqs ?? [:]).prefix(10_000) where Names.isValidUsername(customer) {
                    replayed[customer] = try await replay(customer, after: lastSeq, for: .agent, to: outbound)
                }
            }
            try await Self.write(.synced(Synced(lastSeqs: replayed)), to: outbound)
            await hub.finishSync(connection, replayed: replayed)
        } catch {
            await leave(connection)
            return nil
        }
        return (connection, session.expiresAt)
    }

    /// Sends every message of `customer`'s conversation after `seq`, page by page, waiting for each write so a
    /// long backlog never piles up in memory. Returns the highest sequence sent.
    private func replay(_ customer: String, after seq: Int, for role: Role, to outbound: WebSocketOutboundWriter) async throws -> Int {
        var cursor = max(0, seq)
        while true {
            let page = try await services.messages.history(customer: customer, after: cursor, limit: configuration.historyPageMax,
                                                           audience: Audience(role))
            for message in page.messages {
                try await Self.write(.message(message), to: outbound)
                cursor = message.seq
            }
            if !page.hasMore { return cursor }
        }
    }

    private func scheduleExpiry(of connection: Connection, at expiresAt: Int64?) -> Task<Void, Never>? {
        guard let expiresAt else { return nil }
        return Task {
            let remaining = max(0, expiresAt - epochMilliseconds())
            try? await Task.sleep(for: .milliseconds(remaining))
            guard !Task.isCancelled else { return }
            connection.outbox.close(code: CloseCode.sessionRevoked, reason: "token expired")
        }
    }

    // MARK: Socket helpers

    static func write(_ frame: ServerFrame, to outbound: WebSocketOutboundWriter) async throws {
        try await outbound.write(.custom(WebSocketFrame(fin: true, opcode: .text, data: try encodeFrame(frame))))
    }

    static func close(_ outbound: WebSocketOutboundWriter, code: UInt16, reason: String) async throws {
        // Close reasons are limited to 123 bytes by RFC 6455.
        var reason = reason
        while reason.utf8.count > 123 { reason.removeLast() }
        try await outbound.close(WebSocketErrorCode(codeNumber: Int(code)), reason: reason)
    }

    static func bearerToken(in header: String?) -> String? {
        guard let header else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = parts[1].trimmingCharacters(in: .whitespaces)
        return token.isEmpty ? nil : token
    }
}
