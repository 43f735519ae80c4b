import Foundation
import TestProcesses
#if canImport(Glibc)
import Glibc
#endif

/// A minimal blocking WebSocket client on a plain socket, for tests that need to misbehave in ways a real client
/// library will not: stop reading, send odd frames.
final class RawWebSocket: Sendable {
    private let socket: LoopbackSocket
    private var fd: Int32 { socket.fd }

    init(port: Int, bearer: String?, extraHeaders: [String] = []) throws {
        // A small receive buffer so the server's side fills sooner.
        socket = try LoopbackSocket(port: port, receiveBuffer: 16 * 1024)
        var request = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        request += "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        if let bearer { request += "Authorization: Bearer \(bearer)\r\n" }
        for header in extraHeaders { request += header + "\r\n" }
        request += "\r\n"
        try write(Array(request.utf8))
        let head = try socket.readHead()
        guard head.hasPrefix("HTTP/1.1 101") else { throw TestFailure("upgrade refused: \(head)") }
    }

    func sendText(_ text: String) throws {
        try sendFrame(opcode: 0x1, payload: Array(text.utf8))
    }

    func sendFrame(opcode: UInt8, payload: [UInt8], fin: Bool = true) throws {
        var frame: [UInt8] = [(fin ? 0x80 : 0) | opcode]
        let mask: [UInt8] = [1, 2, 3, 4]
        if payload.count < 126 {
            frame.append(0x80 | UInt8(payload.count))
        } else if payload.count < 65536 {
            frame.append(0x80 | 126)
            frame += [UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        } else {
            frame.append(0x80 | 127)
            frame += (0..<8).reversed().map { UInt8((payload.count >> ($0 * 8)) & 0xFF) }
        }
        frame += mask
        frame += payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
        try write(frame)
    }

    private func write(_ bytes: [UInt8]) throws {
        guard socket.sendAll(bytes) else { throw TestFailure("send() failed") }
    }

    /// Reads frames until a close frame; returns its code (nil if the socket ends without one).
    func drainUntilClose(timeoutSeconds: Int = 10) -> UInt16? {
        if case .closeFrame(let code) = readFrames(for: .seconds(timeoutSeconds), onFrame: { _, _ in }) { return code }
        return nil
    }

    enum Ending: Equatable {
        /// A close frame came, with its code if it had one.
        case closeFrame(UInt16?)
        /// The socket ended without a close frame.
        case socketClosed
        /// Still open when the time was up.
        case stillOpen
    }

    /// Reads frames for at most `duration`, handing each but close frames to `onFrame` (opcode, payload).
    func readFrames(for duration: Duration, onFrame: (UInt8, [UInt8]) throws -> Void) rethrows -> Ending {
        let deadline = ContinuousClock.now + duration
        socket.setReceiveTimeout(seconds: 1)
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            // Parse complete frames from the buffer.
            while buffer.count >= 2 {
                var length = Int(buffer[1] & 0x7F)
                var offset = 2
                if length == 126 {
                    guard buffer.count >= 4 else { break }
                    length = Int(buffer[2]) << 8 | Int(buffer[3])
                    offset = 4
                } else if length == 127 {
                    guard buffer.count >= 10 else { break }
                    length = (2..<10).reduce(0) { $0 << 8 | Int(buffer[$1]) }
                    offset = 10
                }
                guard buffer.count >= offset + length else { break }
                let opcode = buffer[0] & 0x0F
                if opcode == 0x8 {
                    return .closeFrame(length >= 2 ? UInt16(buffer[offset]) << 8 | UInt16(buffer[offset + 1]) : nil)
                }
                try onFrame(opcode, Array(buffer[offset..<(offset + length)]))
                buffer.removeFirst(offset + length)
            }
            guard ContinuousClock.now < deadline else { return .stillOpen }
            let count = recv(fd, &chunk, chunk.count, 0)
            if count == 0 { return .socketClosed }
            if count < 0 {
                guard errno == EAGAIN || errno == EWOULDBLOCK else { return .socketClosed }
                continue
            }
            buffer += chunk[0..<count]
        }
    }
}
