import HummingbirdCore
import Logging
import NIOCore

/// Wraps the server's child channel to give each connection a small first receive buffer. NIO keeps the buffer of a
/// connection's first read for reuse as long as the connection lives, and its default first guess is 2 KiB. An
/// upgrade request and a chat frame fit in far less, and the buffer grows when reads fill it (up to 64 KiB, NIO's
/// usual ceiling), so idle connections hold 512 bytes instead of 2 KiB (measured with chat-bench --idle).
struct SmallReceiveBuffers<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value
    let base: Base

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        // Set before the channel's first read: it runs while the channel is being initialised.
        channel.eventLoop.makeCompletedFuture {
            try channel.syncOptions?.setOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 512, maximum: 65536))
        }.flatMap {
            base.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}
