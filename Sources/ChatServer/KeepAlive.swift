import NIOCore

/// Keep-alive for one WebSocket connection, as a timer on its event loop instead of a task: the WebSocket
/// library's own auto-ping runs a Swift task per connection, 3.2 KiB of each idle connection's memory.
///
/// Every `interval` it looks at whether anything arrived since the last look. If not, it sends a ping (a client's
/// WebSocket library answers with a pong by itself); if nothing arrived for the whole next interval either, the peer
/// is gone: it sends a close frame (1001, "ping timeout") and closes the socket. Any frame from the client, pongs
/// included, counts as a sign of life, so an active client is never pinged.
///
/// It sits at the head of the pipeline and writes the two frames as raw bytes (a server's frames are unmasked).
/// Event-loop tasks never run in the middle of another write, so they cannot split another frame.
final class KeepAliveHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let interval: TimeAmount
    private var heardFrom = true
    private var pingSent = false
    private var timer: RepeatedTask?

    init(interval: TimeAmount) {
        self.interval = interval
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
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: Self.ping)), promise: nil)
            return
        }
        timer?.cancel()
        timer = nil
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: Self.timeoutClose)), promise: nil)
        context.close(promise: nil)
    }

    /// FIN + ping opcode, no payload.
    static let ping: [UInt8] = [0x89, 0x00]
    /// FIN + close opcode, payload: code 1001 (going away) and a reason.
    static let timeoutClose: [UInt8] = {
        let reason = Array("ping timeout".utf8)
        return [0x88, UInt8(2 + reason.count), 0x03, 0xE9] + reason
    }()
}
