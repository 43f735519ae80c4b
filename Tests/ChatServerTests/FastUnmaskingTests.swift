import NIOCore
import NIOWebSocket
import Testing
@testable import ChatServer

@Suite("Fast WebSocket unmasking")
struct FastUnmaskingTests {
    @Test("gives the bytes NIO's own unmasking gives, for every length around the 16-byte blocks and random keys")
    func matchesNIO() {
        var generator = SystemRandomNumberGenerator()
        for length in Array(0...70) + [4093, 65_536, 65_541, 524_288 + 7] {
            let key = WebSocketMaskingKey.random(using: &generator)
            let payload = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            var masked = ByteBuffer(bytes: payload)
            masked.webSocketMask(key)
            var reference = masked
            reference.webSocketUnmask(key)
            let fast = FastUnmasking.unmask(masked, key: key)
            #expect(fast == reference, "length \(length)")
            #expect(Array(fast.readableBytesView) == payload, "length \(length)")
        }
    }

    @Test("a frame comes out unmasked, with no key left for the library to apply again; unmasked frames pass as they are")
    func frames() throws {
        let key = try #require(WebSocketMaskingKey([1, 2, 3, 4]))
        var data = ByteBuffer(string: "hello, world: more than sixteen bytes")
        data.webSocketMask(key)
        let out = FastUnmasking.unmasked(WebSocketFrame(fin: true, opcode: .binary, maskKey: key, data: data))
        #expect(out.maskKey == nil)
        #expect(String(buffer: out.unmaskedData) == "hello, world: more than sixteen bytes")
        #expect(out.fin && out.opcode == .binary)
        let passed = FastUnmasking.unmasked(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: "as is")))
        #expect(String(buffer: passed.data) == "as is")
    }
}
