import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A scripted HTTP server on a loopback port for the faults moto does not make: each request gets the next reply
/// (the last one again once the script runs out), then the connection is closed. Runs on threads of its own, so
/// its blocking sockets never hold a cooperative thread. With `.forward` it stands in front of a real store (moto)
/// and can turn faulty and healthy again while its clients keep the same endpoint.
public final class FakeS3Server: @unchecked Sendable {
    public enum Reply: Sendable {
        case answer(status: Int, headers: [String: String] = [:], body: String = "")
        /// Reads the request and never answers (until the server stops).
        case silent
        /// Passes the request to the server on this loopback port and its answer back.
        case forward(port: Int)
    }

    public let port: Int
    private let listener: Int32
    private let lock = NSLock()
    private var script: [Reply]
    private var heads: [String] = []
    private var stopped = false

    public init(_ script: [Reply]) throws {
        self.script = script
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw TestFailure("socket() failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ready = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, length) == 0 && getsockname(listener, $0, &length) == 0 && listen(listener, 16) == 0
            }
        }
        guard ready else {
            close(listener)
            throw TestFailure("cannot listen on loopback: errno \(errno)")
        }
        self.listener = listener
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread { [self] in acceptLoop() }.start()
    }

    /// The request heads received so far.
    public var requests: [String] { lock.withLock { heads } }

    public var endpoint: String { "http://127.0.0.1:\(port)" }

    /// Replaces the script: the requests from now on get these replies.
    public func play(_ script: [Reply]) {
        lock.withLock { self.script = script }
    }

    /// Safe to call more than once: the listening socket is closed only the first time (a second close could hit
    /// a descriptor another test opened since).
    public func stop() {
        let wasStopped = lock.withLock {
            defer { stopped = true }
            return stopped
        }
        guard !wasStopped else { return }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    deinit { stop() }

    private var isStopped: Bool { lock.withLock { stopped } }

    private func acceptLoop() {
        while !isStopped {
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { return }
            Thread { [self] in serve(connection) }.start()
        }
    }

    private func serve(_ connection: Int32) {
        defer { close(connection) }
        var received: [UInt8] = []
        var byte: UInt8 = 0
        while !received.suffix(4).elementsEqual([13, 10, 13, 10]) {
            guard recv(connection, &byte, 1, 0) == 1 else { return }
            received.append(byte)
        }
        let head = String(decoding: received, as: UTF8.self)
        // The body, if any, is read (and dropped unless forwarded), so the client's write completes.
        let lengthLine = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
        var remaining = lengthLine.flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
        var buffer = [UInt8](repeating: 0, count: 65536)
        var requestBody: [UInt8] = []
        while remaining > 0 {
            let count = recv(connection, &buffer, min(remaining, buffer.count), 0)
            guard count > 0 else { return }
            requestBody += buffer[0..<count]
            remaining -= count
        }
        let reply: Reply = lock.withLock {
            heads.append(head)
            return script.count > 1 ? script.removeFirst() : script[0]
        }
        switch reply {
        case .forward(let port):
            // One request per connection upstream too: the answer then ends where the upstream closes.
            let lines = head.split(separator: "\r\n").filter { !$0.lowercased().hasPrefix("connection:") }
            let forwarded = lines.map { $0 + "\r\n" }.joined() + "Connection: close\r\n\r\n"
            guard let upstream = try? LoopbackSocket(port: port), upstream.sendAll(Array(forwarded.utf8) + requestBody) else { return }
            var answer = upstream.readToEnd(seconds: 30)
            while !answer.isEmpty {
                let sent = answer.withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                guard sent > 0 else { return }
                answer.removeFirst(sent)
            }
        case .silent:
            while !isStopped { usleep(20_000) }
        case .answer(let status, let headers, let body):
            var text = "HTTP/1.1 \(status) Status\r\nConnection: close\r\n"
            var headers = headers
            if headers["Content-Length"] == nil { headers["Content-Length"] = "\(body.utf8.count)" }
            for (name, value) in headers { text += "\(name): \(value)\r\n" }
            text += "\r\n"
            if !head.hasPrefix("HEAD ") { text += body }
            let bytes = Array(text.utf8)
            _ = bytes.withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }
    }
}
