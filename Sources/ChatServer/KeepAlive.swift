import NIOCore
import NIOWebSocket
import Synchronization

/// Keep-alive for the server's WebSocket connections: one timer per event loop looks at every connection on that
/// loop, instead of a task per connection (the WebSocket library's auto-ping) or a timer per connection, either of
/// which every idle connection would pay for in memory.
///
/// Every `interval` the timer looks at whether anything arrived from each connection since the last look. If not, it
/// sends a ping (a client's WebSocket library answers with a pong by itself); if nothing arrived for the whole next
/// interval either, the peer is gone: it sends a close frame (1001, "ping timeout") and closes the socket. Any frame
/// from the client, pongs included, counts as a sign of life, so an active client is never pinged.
final class KeepAlive: Sendable {
    private let interval: TimeAmount
    /// The sweep of each event loop, made when the loop's first connection opens. Only looked up then.
    private let sweeps = Mutex<[ObjectIdentifier: NIOLoopBound<KeepAliveSweep>]>([:])

    init(interval: TimeAmount) {
        self.interval = interval
    }

    /// Adds a keep-alive to an upgraded WebSocket channel, just behind its frame encoder, so that its ping and close
    /// are ordinary frames the encoder writes. On the channel's event loop.
    func install(on channel: any Channel) throws {
        let loop = channel.eventLoop
        let sweep = sweeps.withLock { sweeps in
            if let existing = sweeps[ObjectIdentifier(loop)] { return existing.value }
            let made = KeepAliveSweep(interval: interval, eventLoop: loop)
            sweeps[ObjectIdentifier(loop)] = NIOLoopBound(made, eventLoop: loop)
            return made
        }
        let encoder = try channel.pipeline.syncOperations.handler(type: WebSocketFrameEncoder.self)
        try channel.pipeline.syncOperations.addHandler(KeepAliveHandler(sweep: sweep), position: .after(encoder))
    }
}

/// The connections of one event loop and their timer; used only on that loop. The timer runs while the loop has
/// connections.
final class KeepAliveSweep {
    private let interval: TimeAmount
    private let eventLoop: any EventLoop
    private var connections: [ObjectIdentifier: (handler: KeepAliveHandler, context: ChannelHandlerContext)] = [:]
    private var timer: RepeatedTask?

    init(interval: TimeAmount, eventLoop: any EventLoop) {
        self.interval = interval
        self.eventLoop = eventLoop
    }

    func add(_ handler: KeepAliveHandler, context: ChannelHandlerContext) {
        connections[ObjectIdentifier(handler)] = (handler, context)
        guard timer == nil else { return }
        let loopBound = NIOLoopBound(self, eventLoop: eventLoop)
        timer = eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            loopBound.value.tick()
        }
    }

    func remove(_ handler: KeepAliveHandler) {
        guard connections.removeValue(forKey: ObjectIdentifier(handler)) != nil, connections.isEmpty else { return }
        timer?.cancel()
        timer = nil
    }

    /// Whether the timer runs: only while the loop has connections.
    var isRunning: Bool { timer != nil }

    private func tick() {
        // A copy: a connection that times out removes itself while the loop runs.
        for (handler, context) in connections.values { handler.tick(context: context) }
    }
}

/// One connection's part of the keep-alive: counts what arrives, answers the sweep's tick.
final class KeepAliveHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    typealias InboundOut = NIOAny
    typealias OutboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let sweep: KeepAliveSweep
    private var heardFrom = true
    private var pingSent = false

    init(sweep: KeepAliveSweep) {
        self.sweep = sweep
    }

    func handlerAdded(context: ChannelHandlerContext) {
        sweep.add(self, context: context)
    }

    // Leaving the sweep more than once (timed out, then inactive, then removed) is harmless: `remove` ignores a
    // handler it no longer has.
    func handlerRemoved(context: ChannelHandlerContext) {
        sweep.remove(self)
    }

    func channelInactive(context: ChannelHandlerContext) {
        sweep.remove(self)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        heardFrom = true
        context.fireChannelRead(data)
    }

    fileprivate func tick(context: ChannelHandlerContext) {
        if heardFrom {
            heardFrom = false
            pingSent = false
            return
        }
        if !pingSent {
            pingSent = true
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .ping, data: ByteBuffer())), promise: nil)
            return
        }
        sweep.remove(self)
        var reason = context.channel.allocator.buffer(capacity: 16)
        reason.write(webSocketErrorCode: .goingAway)
        reason.writeString("ping timeout")
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: reason)), promise: nil)
        context.close(promise: nil)
    }
}
