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

    /// Called once when a close is requested. The connection uses it to force the socket shut if the client does
    /// not read even the close frame: a write to a client that never reads would otherwise wait forever.
    private let onClose: @Sendable (CloseRequest) -> Void

    init(limit: Int, onClose: @escaping @Sendable (CloseRequest) -> Void = { _ in }) {
        (frames, continuation) = AsyncStream.makeStream(of: ByteBuffer.self, bufferingPolicy: .bufferingOldest(limit))
        self.onClose = onClose
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
        let request = CloseRequest(code: code, reason: reason, drain: drain)
        let first = closeRequest.withLock { current -> Bool in
            guard current == nil else { return false }
            current = request
            return true
        }
        if first {
            continuation.finish()
            onClose(request)
        }
    }

    /// Ends the queue without a close request (the connection ended by itself).
    func finish() {
        continuation.finish()
    }

    var pendingClose: CloseRequest? {
        closeRequest.withLock { $0 }
    }
}
