import NIOCore

/// Turns the flushes that arrive together on an event loop into one: a flush is deferred to a task queued behind
/// the writes already waiting on the loop, so a burst of frames for one connection leaves in one `writev`.
///
/// Every frame the server sends goes through the WebSocket library's async writer, which flushes after each frame;
/// under load a profile of the server showed a `writev` per frame taking a quarter of its CPU. The library offers no
/// batched write, so batching happens here, at the head of the pipeline. A deferred flush runs before the loop
/// waits for I/O again, so no write waits for more than the tasks already queued. A close flushes first, so nothing
/// written before it is lost.
final class FlushCoalescingHandler: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = NIOAny
    typealias OutboundOut = NIOAny

    private var flushPending = false

    func flush(context: ChannelHandlerContext) {
        guard !flushPending else { return }
        flushPending = true
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        context.eventLoop.execute {
            let (handler, context) = loopBound.value
            handler.flushNow(context: context)
        }
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        flushNow(context: context)
        context.close(mode: mode, promise: promise)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        flushNow(context: context)
    }

    private func flushNow(context: ChannelHandlerContext) {
        guard flushPending else { return }
        flushPending = false
        context.flush()
    }
}
