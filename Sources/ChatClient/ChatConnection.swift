import ChatProtocol
import Foundation
import HTTPTypes
import HummingbirdWSClient
import Logging
import NIOCore
import NIOSSL
import NIOWebSocket

/// How a connection ended: the close code and reason the server sent, if any.
public struct CloseInfo: Sendable, Equatable {
    public var code: UInt16?
    public var reason: String?
}

/// Errors of a client connection.
public enum ChatConnectionError: Error, Sendable, CustomStringConvertible {
    case timeout(Duration)
    case closed(CloseInfo)
    case unexpected(String)

    public var description: String {
        switch self {
        case .timeout(let duration): "no frame from the server within \(duration)"
        case .closed(let info): "connection closed (\(info.code.map(String.init) ?? "no code"): \(info.reason ?? ""))"
        case .unexpected(let text): "unexpected answer from the server: \(text)"
        }
    }
}

/// One received frame: decoded when it is a known server frame, and always the raw text.
public struct Incoming: Sendable {
    public var frame: ServerFrame?
    public var text: String
}

/// Frames received and not yet consumed, and the consumers waiting for them.
actor Inbox {
    private var frames: [Incoming] = []
    private var head = 0
    private var ended: CloseInfo?
    private var waiter: CheckedContinuation<Incoming?, Never>?

    func append(_ incoming: Incoming) {
        if let waiter {
            self.waiter = nil
            waiter.resume(returning: incoming)
        } else {
            frames.append(incoming)
        }
    }

    func finish(_ info: CloseInfo) {
        ended = info
        waiter?.resume(returning: nil)
        waiter = nil
    }

    var closeInfo: CloseInfo? { ended }

    /// The next frame, or nil once the connection has ended and everything was consumed.
    func next() async -> Incoming? {
        if let ready = poll() { return ready }
        if ended != nil { return nil }
        return await withCheckedContinuation { waiter = $0 }
    }

    /// A frame already received, without waiting.
    func poll() -> Incoming? {
        guard head < frames.count else { return nil }
        defer {
            head += 1
            if head > 1024 { frames.removeFirst(head); head = 0 }
        }
        return frames[head]
    }

    /// Wakes a pending `next()` with nil (timeout); the caller decides what that means.
    func cancelWait() {
        waiter?.resume(returning: nil)
        waiter = nil
    }
}

/// A WebSocket connection to a chat server, for clients, tests and the load generator: send frames, await the next
/// frame with a timeout, see how the server closed the connection.
public final class ChatConnection: Sendable {
    private let outgoing: AsyncStream<WebSocketOutboundWriter.OutboundFrame>.Continuation
    private let inbox = Inbox()
    private let task: Task<Void, Never>
    private let codec = FrameCodec()

    /// Opens the WebSocket (`ws://` or `wss://`). `bearer` is sent as `Authorization: Bearer`; without it, put the
    /// token in `hello`. `tlsConfiguration` overrides the default (system trust roots) for `wss://`.
    /// `decodeFrames: false` skips JSON decoding of received frames (`Incoming.frame` stays nil) for load generators
    /// that only look at the text.
    public init(url: String, bearer: String? = nil, maxFrameSize: Int = 1 << 20, tlsConfiguration: TLSConfiguration? = nil,
                decodeFrames: Bool = true, logger: Logger = Logger(label: "chat-client")) {
        let (stream, continuation) = AsyncStream.makeStream(of: WebSocketOutboundWriter.OutboundFrame.self)
        outgoing = continuation
        let inbox = self.inbox
        var headers = HTTPFields()
        if let bearer { headers[.authorization] = "Bearer \(bearer)" }
        let configuration = WebSocketClientConfiguration(maxFrameSize: maxFrameSize, additionalHeaders: headers,
                                                         closeTimeout: .seconds(2))
        task = Task {
            let codec = FrameCodec()
            var info = CloseInfo()
            do {
                let closeFrame = try await WebSocketClient.connect(url: url, configuration: configuration, tlsConfiguration: tlsConfiguration, logger: logger) { inbound, outbound, _ in
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask {
                            for await frame in stream { try await outbound.write(frame) }
                            try await outbound.close(.normalClosure, reason: nil)
                        }
                        for try await message in inbound.messages(maxSize: maxFrameSize) {
                            guard case .text(let text) = message else { continue }
                            let frame = decodeFrames ? try? codec.decodeServerFrame(Data(text.utf8)) : nil
                            await inbox.append(Incoming(frame: frame, text: text))
                        }
                        group.cancelAll()
                    }
                }
                if let closeFrame {
                    // NIO exposes the numeric code only through its wire encoding.
                    var buffer = ByteBuffer()
                    buffer.write(webSocketErrorCode: closeFrame.closeCode)
                    info = CloseInfo(code: buffer.readInteger(as: UInt16.self), reason: closeFrame.reason)
                }
            } catch {
                info = CloseInfo(code: nil, reason: "\(error)")
            }
            await inbox.finish(info)
        }
    }

    deinit {
        outgoing.finish()
    }

    public func send(_ frame: ClientFrame) throws {
        let data = try codec.encode(frame)
        outgoing.yield(.text(String(decoding: data, as: UTF8.self)))
    }

    public func sendText(_ text: String) {
        outgoing.yield(.text(text))
    }

    public func sendBinary(_ bytes: [UInt8]) {
        outgoing.yield(.binary(ByteBuffer(bytes: bytes)))
    }

    /// Closes the connection normally.
    public func close() {
        outgoing.finish()
    }

    /// Waits until the connection has ended and says how; nil if it is still open after `timeout`. The connection's
    /// task records how it ended as its last step; this looks for that rather than awaiting the task, whose value
    /// cannot be given up at the timeout (a connection that stayed open held its caller forever).
    public func closed(timeout: Duration = .seconds(10)) async -> CloseInfo? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let info = await inbox.closeInfo { return info }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return await inbox.closeInfo
    }

    /// The next frame from the server.
    public func receive(timeout: Duration = .seconds(5)) async throws(ChatConnectionError) -> Incoming {
        let inbox = self.inbox
        // Fast path: a frame is waiting, no timer needed (keeps a busy consumer cheap).
        if let ready = await inbox.poll() { return ready }
        let timer = Task {
            try await Task.sleep(for: timeout)
            await inbox.cancelWait()
        }
        defer { timer.cancel() }
        if let incoming = await inbox.next() { return incoming }
        if let info = await inbox.closeInfo { throw .closed(info) }
        throw .timeout(timeout)
    }

    /// The next frame for which `match` returns a value, skipping others (presence, roster updates, typing...).
    public func receive<T>(timeout: Duration = .seconds(5), _ match: (ServerFrame) -> T?) async throws(ChatConnectionError) -> T {
        let deadline = ContinuousClock.now + timeout
        while true {
            let remaining = deadline - .now
            guard remaining > .zero else { throw .timeout(timeout) }
            let incoming = try await receive(timeout: remaining)
            if let frame = incoming.frame, let value = match(frame) { return value }
        }
    }

    /// Sends `hello` and waits for `welcome`.
    public func hello(_ hello: Hello, timeout: Duration = .seconds(10)) async throws(ChatConnectionError) -> Welcome {
        do { try send(.hello(hello)) } catch { throw .unexpected("\(error)") }
        return try await receive(timeout: timeout) { frame in
            if case .welcome(let welcome) = frame { return welcome }
            return nil
        }
    }
}
