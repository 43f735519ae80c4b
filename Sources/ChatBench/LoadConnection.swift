import Histogram
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// The bench's WebSocket connections, written on NIO channel handlers rather than the product's client
/// (`ChatConnection`): on a two-core machine every cycle the load generator spends is taken from the server it
/// measures, and the client's per-frame tasks, streams and timers cost the generator more CPU than the server spent.
/// Here each connection is one handler on an event loop: no task, no stream, frames are scanned as bytes.

/// The schedule every sending connection follows. Times are nanoseconds after `origin` (NIO's uptime clock).
struct LoadPlan: Sendable {
    var origin: UInt64
    var measureFrom: Int64
    var measureUntil: Int64
    /// Messages per second over all customers; 0 is closed loop (each customer keeps `window` unacknowledged).
    var rate: Int
    var window: Int
    var customers: Int
    var padding: String

    func now() -> Int64 { Int64(NIODeadline.now().uptimeNanoseconds) - Int64(origin) }
    func measures(_ sent: Int64) -> Bool { sent >= measureFrom && sent < measureUntil }
}

/// What the connections of one event loop counted; only touched on that loop's thread.
final class LoopTally {
    var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000)
    var delivered = 0
    var acked = 0
    var errors = 0
}

struct TallySnapshot: Sendable {
    var histogram: Histogram<UInt64>
    var delivered: Int
    var acked: Int
    var errors: Int
}

/// The event loops of the generator, each with its tally.
final class LoadLoops: Sendable {
    let group: MultiThreadedEventLoopGroup
    private let tallies: [ObjectIdentifier: NIOLoopBound<LoopTally>]

    init(threads: Int) async throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        var tallies: [ObjectIdentifier: NIOLoopBound<LoopTally>] = [:]
        for loop in group.makeIterator() {
            tallies[ObjectIdentifier(loop)] = try await loop.submit { NIOLoopBound(LoopTally(), eventLoop: loop) }.get()
        }
        self.tallies = tallies
    }

    /// The next loop (round robin) and its tally.
    func next() -> (loop: any EventLoop, tally: NIOLoopBound<LoopTally>) {
        let loop = group.next()
        guard let tally = tallies[ObjectIdentifier(loop)] else { preconditionFailure("every loop of the group has a tally") }
        return (loop, tally)
    }

    /// All tallies added up.
    func total() async throws -> TallySnapshot {
        var total = TallySnapshot(histogram: Histogram(highestTrackableValue: 60_000_000), delivered: 0, acked: 0, errors: 0)
        for loop in group.makeIterator() {
            guard let bound = tallies[ObjectIdentifier(loop)] else { continue }
            let part = try await loop.submit {
                let tally = bound.value
                return TallySnapshot(histogram: tally.histogram, delivered: tally.delivered, acked: tally.acked, errors: tally.errors)
            }.get()
            total.histogram.add(part.histogram)
            total.delivered += part.delivered
            total.acked += part.acked
            total.errors += part.errors
        }
        return total
    }

    func shutdown() async throws {
        try await group.shutdownGracefully()
    }
}

/// One bench connection: upgraded, said hello and got `synced`.
struct LoadConnection: Sendable {
    enum Kind: Sendable {
        /// Receives every message and records its end-to-end latency.
        case agent
        /// Sends messages, numbered `index` among the customers, and counts their acks.
        case customer(index: Int)
        /// Says hello and then nothing.
        case idle
    }

    let channel: any Channel

    /// Connects to `ws://host:port/ws` with `token` as bearer, sends `hello` (a JSON text) and waits for `synced`.
    static func open(_ kind: Kind, host: String, port: Int, token: String, hello: String, loops: LoadLoops) async throws -> LoadConnection {
        let (loop, tally) = loops.next()
        let synced = loop.makePromise(of: Void.self)
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: "\(host):\(port)")
        headers.add(name: "Authorization", value: "Bearer \(token)")
        headers.add(name: "Content-Length", value: "0")
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/ws", headers: headers)
        let upgraded: EventLoopFuture<(any Channel)?> = try await ClientBootstrap(group: loop)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let upgrader = NIOTypedWebSocketClientUpgrader<(any Channel)?>(maxFrameSize: 1 << 20) { channel, _ in
                        channel.eventLoop.makeCompletedFuture {
                            let handler = LoadHandler(kind: kind, tally: tally.value, synced: synced)
                            try channel.pipeline.syncOperations.addHandler(handler)
                            return channel
                        }
                    }
                    let configuration = NIOTypedHTTPClientUpgradeConfiguration<(any Channel)?>(
                        upgradeRequestHead: head, upgraders: [upgrader],
                        notUpgradingCompletionHandler: { channel in channel.eventLoop.makeSucceededFuture(nil) })
                    return try channel.pipeline.syncOperations.configureUpgradableHTTPClientPipeline(
                        configuration: .init(upgradeConfiguration: configuration))
                }
            }
        guard let channel = try await upgraded.get() else {
            synced.fail(BenchError("the server refused the WebSocket upgrade"))
            throw BenchError("the server refused the WebSocket upgrade")
        }
        channel.closeFuture.whenComplete { _ in synced.fail(BenchError("connection closed before synced")) }
        // Only now: a frame written while the upgrade is still being completed would meet the HTTP encoder.
        channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .text, maskKey: .random(), data: ByteBuffer(string: hello)), promise: nil)
        try await synced.futureResult.get()
        return LoadConnection(channel: channel)
    }

    /// Starts sending (customers) or recording (agents) on the connection's event loop.
    func start(_ plan: LoadPlan) {
        channel.pipeline.fireUserInboundEventTriggered(plan)
    }

    func close() {
        channel.close(promise: nil)
    }
}

/// The per-connection state machine, on the connection's event loop.
private final class LoadHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let kind: LoadConnection.Kind
    private let tally: LoopTally
    private var synced: EventLoopPromise<Void>?
    private var plan: LoadPlan?
    private var sequence = 0
    private var inFlight = 0
    /// Open loop: when the next message is due, in nanoseconds after the plan's origin.
    private var nextSend: Int64 = 0

    init(kind: LoadConnection.Kind, tally: LoopTally, synced: EventLoopPromise<Void>) {
        self.kind = kind
        self.tally = tally
        self.synced = synced
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text:
            received(frame.data, context: context)
        case .ping:
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: frame.data)), promise: nil)
        case .connectionClose:
            context.close(promise: nil)
        default:
            break
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let plan = event as? LoadPlan else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        self.plan = plan
        guard case .customer(let index) = kind else { return }
        if plan.rate == 0 {
            refill(context: context)
        } else {
            // Open loop: a fixed schedule per customer, staggered; latency counts from the scheduled time, so a
            // stalled server cannot hide its delay by slowing the sender.
            nextSend = Int64(Double(index) / Double(plan.rate) * 1e9)
            scheduleNext(context: context)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        synced?.fail(error)
        context.close(promise: nil)
    }

    private func received(_ text: ByteBuffer, context: ChannelHandlerContext) {
        text.withUnsafeReadableBytes { bytes in
            if let promise = synced {
                if FrameScan.contains(FrameScan.syncedType, in: bytes) {
                    synced = nil
                    promise.succeed()
                }
                return
            }
            guard let plan else { return }
            switch kind {
            case .agent:
                guard FrameScan.contains(FrameScan.messageType, in: bytes),
                      let sent = FrameScan.number(after: FrameScan.textMarker, in: bytes), plan.measures(sent) else { return }
                tally.histogram.record(UInt64(max(0, plan.now() - sent) / 1000))
                tally.delivered += 1
            case .customer:
                if FrameScan.contains(FrameScan.ackType, in: bytes) {
                    if let sent = FrameScan.lastNumber(inValueAfter: FrameScan.clientIdMarker, in: bytes), plan.measures(sent) {
                        tally.acked += 1
                    }
                } else if FrameScan.contains(FrameScan.errorType, in: bytes) {
                    tally.errors += 1
                } else {
                    return
                }
                inFlight -= 1
                if plan.rate == 0 { refill(context: context) }
            case .idle:
                break
            }
        }
    }

    /// Closed loop: tops the window up while the measurement lasts.
    private func refill(context: ChannelHandlerContext) {
        guard let plan, plan.now() < plan.measureUntil, inFlight < plan.window else { return }
        while inFlight < plan.window {
            send(at: plan.now(), context: context)
            inFlight += 1
        }
        context.flush()
    }

    private func scheduleNext(context: ChannelHandlerContext) {
        guard let plan, nextSend < plan.measureUntil else { return }
        let deadline = NIODeadline.uptimeNanoseconds(plan.origin + UInt64(nextSend))
        context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            send(at: nextSend, context: context)
            context.flush()
            nextSend += Int64(Double(plan.customers) / Double(plan.rate) * 1e9)
            scheduleNext(context: context)
        }
    }

    /// One `send` frame; the scheduled time travels in the text (for agents) and the clientId (for the ack).
    private func send(at scheduled: Int64, context: ChannelHandlerContext) {
        guard case .customer(let index) = kind, let plan else { return }
        sequence += 1
        write(#"{"type":"send","clientId":"\#(index)-\#(sequence)-\#(scheduled)","text":"t=\#(scheduled);\#(plan.padding)"}"#, context: context)
    }

    private func write(_ text: String, context: ChannelHandlerContext) {
        let frame = WebSocketFrame(fin: true, opcode: .text, maskKey: .random(), data: context.channel.allocator.buffer(string: text))
        context.write(wrapOutboundOut(frame), promise: nil)
    }
}
