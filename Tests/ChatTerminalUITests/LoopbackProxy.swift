import Foundation
import Synchronization
import TestProcesses
#if canImport(Glibc)
import Glibc
#endif

/// A TCP proxy on a loopback port in front of the chat server, standing in for the network between a client and
/// the server: it can slow the client's uploads down (so a test can catch one half way) and cut every connection
/// (a dropped Wi-Fi, a NAT timeout) while the server stays up. Blocking sockets, a thread per direction: a test
/// tool, not a server.
final class LoopbackProxy: Sendable {
    struct State {
        /// Bytes forwarded from the client to the server, per accepted connection in order.
        var upstreamBytes: [Int] = []
        /// Open connections: client and server descriptors, and how many of their two pumps still run.
        var pairs: [Int: (client: Int32, server: Int32, running: Int)] = [:]
        /// Client-to-server bytes per second; nil forwards at full speed.
        var throttle: Int?
        /// A connection that has forwarded this many bytes from its client forwards no more until lifted.
        var holdAt: Int?
        var stopped = false
    }

    let port: Int
    private let upstreamPort: Int
    private let listener: Int32
    private let state = Mutex(State())

    init(upstreamPort: Int) throws {
        self.upstreamPort = upstreamPort
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("proxy: socket() failed, errno \(errno)") }
        var address = Self.loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            close(fd)
            throw TestFailure("proxy: cannot listen on loopback, errno \(errno)")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        listener = fd
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread { [self] in acceptLoop() }.start()
    }

    /// Bytes the client sent through each connection so far, in the order they were accepted.
    var upstreamBytes: [Int] { state.withLock { $0.upstreamBytes } }

    func setThrottle(bytesPerSecond: Int?) { state.withLock { $0.throttle = bytesPerSecond } }

    /// Stops forwarding a client's bytes once its connection has forwarded `bytes` (nil: forward again), so a test can
    /// cut a transfer part way whatever the machine's load.
    func hold(atBytes bytes: Int?) { state.withLock { $0.holdAt = bytes } }

    /// Drops every open connection at once (both ends see the stream end); new ones are still accepted.
    func cut() {
        // Under the lock, so a descriptor is never shut down after its pair closed it (and the number was reused).
        state.withLock { state in
            for pair in state.pairs.values {
                shutdown(pair.client, Int32(SHUT_RDWR))
                shutdown(pair.server, Int32(SHUT_RDWR))
            }
        }
    }

    func stop() {
        state.withLock { $0.stopped = true }
        cut()
        // shutdown wakes the thread blocked in accept(); it closes the listener on its way out.
        shutdown(listener, Int32(SHUT_RDWR))
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        return address
    }

    private func acceptLoop() {
        defer { close(listener) }
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                return
            }
            let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = Self.loopback(port: upstreamPort)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            let index: Int? = state.withLock { state in
                guard !state.stopped, connected == 0 else { return nil }
                state.upstreamBytes.append(0)
                let index = state.upstreamBytes.count - 1
                state.pairs[index] = (client, server, 2)
                return index
            }
            guard let index else {
                close(client)
                close(server)
                continue
            }
            Thread { [self] in pump(from: client, to: server, pair: index, counted: true) }.start()
            Thread { [self] in pump(from: server, to: client, pair: index, counted: false) }.start()
        }
    }

    /// Copies one direction until either side ends; counts (and throttles) the client's direction.
    private func pump(from source: Int32, to destination: Int32, pair: Int, counted: Bool) {
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        defer {
            // Ending one direction ends the other; the last pump out closes both descriptors.
            state.withLock { state in
                shutdown(source, Int32(SHUT_RDWR))
                shutdown(destination, Int32(SHUT_RDWR))
                guard var entry = state.pairs[pair] else { return }
                entry.running -= 1
                if entry.running == 0 {
                    close(entry.client)
                    close(entry.server)
                    state.pairs[pair] = nil
                } else {
                    state.pairs[pair] = entry
                }
            }
        }
        while true {
            if counted {
                // Held: wait, and end when the other direction has ended (a cut).
                let (held, alone) = state.withLock { state in
                    (state.holdAt.map { state.upstreamBytes[pair] >= $0 } ?? false, (state.pairs[pair]?.running ?? 0) < 2)
                }
                if alone { return }
                if held {
                    Thread.sleep(forTimeInterval: 0.01)
                    continue
                }
            }
            let count = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return }
            var throttle: Int?
            if counted {
                throttle = state.withLock { state in
                    state.upstreamBytes[pair] += count
                    return state.throttle
                }
            }
            var written = 0
            while written < count {
                let n = buffer.withUnsafeBytes { send(destination, $0.baseAddress! + written, count - written, Int32(MSG_NOSIGNAL)) }
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { return }
                written += n
            }
            if let throttle, throttle > 0 {
                Thread.sleep(forTimeInterval: Double(count) / Double(throttle))
            }
        }
    }
}
