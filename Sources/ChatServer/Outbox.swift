import ChatProtocol
import NIOCore
import Synchronization

/// The outbound queue of one WebSocket connection. Everything sent to a client after its initial sync goes through
/// here, so one task writes to the socket in order. The queue is bounded: a client that does not read fast enough
/// overflows it and is closed with 4009 rather than making the server buffer without limit.
final class Outbox: Sendable {
    struct CloseRequest: Sendable, Equatable {
        var code: UInt16
        var reason: String
        /// Write what is already queued before closing (shutdown), instead of dropping it (overflow, revocation).
        var drain: Bool
    }

    let frames: AsyncStream<ByteBuffer>
    private let continuation: AsyncStream<ByteBuffer>.Continuation
    /// Set once, by whoever closes first (overflow, revocation, shutdown, flood).
    private let closeRequest = Mutex<CloseRequest?>(nil)

    init(limit: Int) {
        (frames, continuation) = AsyncStream.makeStream(of: ByteBuffer.self, bufferingPolicy: .bufferingOldest(limit))
    }

    /// Queues one encoded frame. Never blocks; overflow closes the connection.
    func send(_ frame: ByteBuffer) {
        switch continuation.yield(frame) {
        case .dropped:
            close(code: CloseCode.slowConsumer, reason: "slow consumer: outbound buffer full; reconnect and resume from your last sequence")
        case .enqueued, .terminated:
            break
        @unknown default:
            break
        }
    }

    /// Asks the writer to close the socket with `code` and `reason`, after writing what is queued when `drain`.
    func close(code: UInt16, reason: String, drain: Bool = false) {
        let first = closeRequest.withLock { request -> Bool in
            guard request == nil else { return false }
            request = CloseRequest(code: code, reason: reason, drain: drain)
            return true
        }
        if first { continuation.finish() }
    }

    /// Ends the queue without a close request (the connection ended by itself).
    func finish() {
        continuation.finish()
    }

    var pendingClose: CloseRequest? {
        closeRequest.withLock { $0 }
    }
}
