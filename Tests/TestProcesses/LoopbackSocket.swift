import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A blocking TCP connection to a server on 127.0.0.1, for requests a client library will not make (chunked bodies,
/// `Expect: 100-continue`, raw WebSocket frames, a reader that stops reading). Use it through `offPool`.
public final class LoopbackSocket: Sendable {
    public let fd: Int32

    /// Connects to `port`; `receiveBuffer` shrinks the kernel's receive buffer (so a server's writes back up sooner).
    public init(port: Int, receiveBuffer: Int32? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket() failed: errno \(errno)") }
        if var size = receiveBuffer {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        // No close here: once every property is set, a throwing init still runs deinit, which closes the socket.
        // Closing it here too closed the number twice, and the second close could hit a socket another thread
        // (a NIO event loop) had opened meanwhile.
        guard connected == 0 else { throw TestFailure("connect() to port \(port) failed: errno \(errno)") }
        setReceiveTimeout(seconds: 10)
    }

    deinit { if fd >= 0 { Glibc.close(fd) } }

    public func setReceiveTimeout(seconds: Int) {
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// False when the peer stopped reading or closed (a server may answer before a whole body is sent).
    @discardableResult
    public func sendAll(_ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent <= 0 { return false }
            offset += sent
        }
        return true
    }

    /// One HTTP response head (status line and headers), read byte by byte so nothing after it is consumed; waits
    /// at most `seconds`.
    public func readHead(seconds: Int = 10) throws -> String {
        setReceiveTimeout(seconds: seconds)
        var head: [UInt8] = []
        var byte: UInt8 = 0
        while head.count < 4 || !head[(head.count - 4)...].elementsEqual([13, 10, 13, 10]) {
            guard recv(fd, &byte, 1, 0) == 1 else {
                throw TestFailure("no complete response head within \(seconds) s: \(String(decoding: head, as: UTF8.self))")
            }
            head.append(byte)
        }
        return String(decoding: head, as: UTF8.self)
    }

    /// Everything the peer sends until it closes; waits at most `seconds` between reads.
    public func readToEnd(seconds: Int = 10) -> [UInt8] {
        setReceiveTimeout(seconds: seconds)
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(fd, &chunk, chunk.count, 0)
            guard count > 0 else { return received }
            received += chunk[0..<count]
        }
    }

    /// The status code of the next HTTP response.
    public func readStatus() throws -> Int {
        let line = try readHead().prefix { $0 != "\r" }
        let parts = line.split(separator: " ")
        guard parts.count >= 2, let status = Int(parts[1]) else { throw TestFailure("no HTTP status in \(line)") }
        return status
    }
}
