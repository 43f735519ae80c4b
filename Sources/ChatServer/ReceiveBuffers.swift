import HummingbirdCore
import Logging
import NIOCore

/// Wraps the server's child channel to give each connection a small first receive buffer. NIO keeps the buffer of a
/// connection's first read for reuse as long as the connection lives, and its default first guess is larger than
/// an upgrade request or a chat frame needs. The buffer grows when reads fill it (up to NIO's usual ceiling), so a
/// small first guess costs busy connections nothing and saves memory on every idle one (BENCHMARKS.md).
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
