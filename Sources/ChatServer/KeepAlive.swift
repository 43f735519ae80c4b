import NIOCore
import NIOWebSocket

/// Keep-alive for one WebSocket connection, as a timer on its event loop instead of a task: the WebSocket
/// library's own auto-ping runs a Swift task per connection, 3.2 KiB of each idle connection's memory.
///
/// Every `interval` it looks at whether anything arrived since the last look. If not, it sends a ping (a client's
/// WebSocket library answers with a pong by itself); if nothing arrived for the whole next interval either, the peer
/// is gone: it sends a close frame (1001, "ping timeout") and closes the socket. Any frame from the client, pongs
/// included, counts as a sign of life, so an active client is never pinged.
///
/// It sits just behind NIO's WebSocket frame encoder (see `install(on:)`), so its ping and close are ordinary
/// frames that the encoder writes; what it reads is counted, not looked into.
final class KeepAliveHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    typealias InboundOut = NIOAny
    typealias OutboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let interval: TimeAmount
    private var heardFrom = true
    private var pingSent = false
    private var timer: RepeatedTask?

    init(interval: TimeAmount) {
        self.interval = interval
    }

    /// Adds a keep-alive to an upgraded WebSocket channel, behind its frame encoder. On the channel's event loop.
    static func install(on channel: any Channel, interval: TimeAmount) throws {
        let encoder = try channel.pipeline.syncOperations.handler(type: WebSocketFrameEncoder.self)
        try channel.pipeline.syncOperations.addHandler(KeepAliveHandler(interval: interval), position: .after(encoder))
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            let (handler, context) = loopBound.value
            handler.tick(context: context)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        heardFrom = true
        context.fireChannelRead(data)
    }

    private func tick(context: ChannelHandlerContext) {
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
        timer?.cancel()
        timer = nil
        var reason = context.channel.allocator.buffer(capacity: 16)
        reason.write(webSocketErrorCode: .goingAway)
        reason.writeString("ping timeout")
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: reason)), promise: nil)
        context.close(promise: nil)
    }
}
