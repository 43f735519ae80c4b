import NIOCore
import NIOEmbedded
import NIOPosix
import TestProcesses
import Testing
@testable import ChatServer

@Suite("Flush coalescing")
struct FlushCoalescingTests {
    /// Counts the flushes that get past the coalescing handler, towards the socket.
    final class FlushCounter: ChannelOutboundHandler {
        typealias OutboundIn = NIOAny
        var flushes = 0
        func flush(context: ChannelHandlerContext) {
            flushes += 1
            context.flush()
        }
    }

    @Test("flushes issued together reach the socket as one, after the loop's queued tasks, with every write in order")
    func coalesces() throws {
        let channel = EmbeddedChannel()
        let counter = FlushCounter()
        try channel.pipeline.syncOperations.addHandler(counter)
        try channel.pipeline.syncOperations.addHandler(FlushCoalescingHandler())
        for text in ["a", "b", "c"] {
            channel.write(ByteBuffer(string: text), promise: nil)
            channel.flush()
        }
        #expect(counter.flushes == 0)
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)
        channel.embeddedEventLoop.run()
        #expect(counter.flushes == 1)
        var written: [String] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { written.append(String(buffer: buffer)) }
        #expect(written == ["a", "b", "c"])

        channel.write(ByteBuffer(string: "d"), promise: nil)
        channel.flush()
        channel.embeddedEventLoop.run()
        #expect(counter.flushes == 2)
        #expect(try channel.readOutbound(as: ByteBuffer.self).map { String(buffer: $0) } == "d")
    }

    /// Writes a farewell, flushes and closes at once, in one event-loop task, as the WebSocket library does when
    /// it gives up on a connection.
    final class Farewell: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        func channelActive(context: ChannelHandlerContext) {
            context.write(NIOAny(ByteBuffer(string: "goodbye")), promise: nil)
            context.flush()
            context.close(promise: nil)
        }
    }

    @Test("on a real socket, a close right after a write and flush sends the write before closing")
    func closeFlushes() async throws {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(FlushCoalescingHandler())
                    try channel.pipeline.syncOperations.addHandler(Farewell())
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { server.close(promise: nil) }
        let port = try #require(server.localAddress?.port)
        let received = try await offPool { try LoopbackSocket(port: port).readToEnd() }
        #expect(String(decoding: received, as: UTF8.self) == "goodbye")
    }
}
