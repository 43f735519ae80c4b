import HummingbirdWebSocket
import NIOCore
import NIOWebSocket

/// Unmasks what clients send 16 bytes at a time, before the WebSocket library would do it a byte at a time.
///
/// Every client frame is masked (RFC 6455 section 5.3), and NIO's `webSocketUnmask` XORs byte by byte: it was the
/// bottleneck of an upload over the chat socket (BENCHMARKS.md). The
/// library's non-negotiated extension hook sees each frame before it is unmasked; this one returns it unmasked (no
/// masking key), so the library passes the bytes on as they are. Nothing is negotiated with the client and nothing
/// changes on the wire.
struct FastUnmasking: WebSocketExtension {
    let name = "chat-fast-unmasking"

    func processReceivedFrame(_ frame: WebSocketFrame, context: WebSocketExtensionContext) async throws -> WebSocketFrame {
        Self.unmasked(frame)
    }

    /// The frame with its payload unmasked and no masking key. Frames with extension data (none today: no
    /// extension is negotiated) keep the library's path.
    static func unmasked(_ frame: WebSocketFrame) -> WebSocketFrame {
        guard let key = frame.maskKey, frame.extensionData == nil else { return frame }
        var unmasked = frame
        unmasked.data = unmask(frame.data, key: key)
        unmasked.maskKey = nil
        return unmasked
    }

    func processFrameToSend(_ frame: WebSocketFrame, context: WebSocketExtensionContext) async throws -> WebSocketFrame {
        frame
    }

    func shutdown() async {}

    /// `data` XOR the repeated 4-byte key, starting at key byte 0, into a new buffer (one pass over the bytes; the
    /// frame still holds the masked buffer, so unmasking in place would copy it first anyway).
    static func unmask(_ data: ByteBuffer, key: WebSocketMaskingKey) -> ByteBuffer {
        let count = data.readableBytes
        var out = ByteBuffer()
        guard count > 0 else { return out }
        out.reserveCapacity(count)
        let k = Array(key)
        let pattern = SIMD16<UInt8>(k[0], k[1], k[2], k[3], k[0], k[1], k[2], k[3],
                                    k[0], k[1], k[2], k[3], k[0], k[1], k[2], k[3])
        _ = data.withUnsafeReadableBytes { source in
            out.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { target in
                guard let src = source.baseAddress, let dst = target.baseAddress else { return 0 }
                var offset = 0
                // 16 is a multiple of 4, so the pattern stays aligned with the key at every block.
                while offset + 16 <= count {
                    let block = src.loadUnaligned(fromByteOffset: offset, as: SIMD16<UInt8>.self)
                    dst.storeBytes(of: block ^ pattern, toByteOffset: offset, as: SIMD16<UInt8>.self)
                    offset += 16
                }
                while offset < count {
                    dst.storeBytes(of: src.load(fromByteOffset: offset, as: UInt8.self) ^ k[offset & 3],
                                   toByteOffset: offset, as: UInt8.self)
                    offset += 1
                }
                return count
            }
        }
        return out
    }
}
