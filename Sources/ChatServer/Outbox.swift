import ChatProtocol
import NIOCore
import NIOWebSocket
import Synchronization

/// The outbound side of one WebSocket connection once its initial sync is done. Whoever produces a frame (the hub,
/// the message writer, the session) writes it straight to the connection's channel; NIO queues writes on the
/// channel's event loop in the order they were made. There is no task, stream or lock per frame: a task per
/// connection to feed the socket cost memory on every idle connection and a thread hop per frame.
///
/// The buffer is bounded in bytes by the channel's high-water mark (set to the configured outbound buffer when the
/// connection opens): once more than that waits to be written the channel stops being writable, and the next frame
/// closes the connection with 4009 instead of buffering without limit. The client resumes by sequence.
final class Outbox: Sendable {
    struct CloseRequest: Sendable {
        var code: UInt16
        var reason: String
        /// Shutdown: the client gets longer to read what is queued before the socket is cut.
        var drain: Bool
    }

    private let channel: any Channel
    /// Set once: by whoever closes first (overflow, revocation, shutdown, flood), or when the connection ended.
    private let closed = Atomic<Bool>(false)
    /// Called once when a close is requested: sends the close frame and forces the socket shut if the client does
    /// not answer (a client that reads nothing never sees the close frame).
    private let onClose: @Sendable (CloseRequest) -> Void

    init(channel: any Channel, onClose: @escaping @Sendable (CloseRequest) -> Void = { _ in }) {
        self.channel = channel
        self.onClose = onClose
    }

    /// Writes one encoded text frame. Never blocks; a full buffer closes the connection.
    func send(_ frame: ByteBuffer) {
        send(contentsOf: [frame])
    }

    /// Writes encoded text frames in order, in one event-loop task with one flush.
    func send(contentsOf frames: [ByteBuffer]) {
        guard !frames.isEmpty, !closed.load(ordering: .relaxed) else { return }
        let channel = self.channel
        channel.eventLoop.execute {
            // Checked per frame on the loop, where writability is exact: a large batch overshoots the bound by at
            // most one frame.
            for frame in frames {
                guard channel.isWritable else {
                    self.overflowed()
                    break
                }
                channel.write(WebSocketFrame(fin: true, opcode: .text, data: frame), promise: nil)
            }
            channel.flush()
        }
    }

    private func overflowed() {
        close(code: CloseCode.slowConsumer, reason: "slow consumer: outbound buffer full; reconnect and resume from your last sequence")
    }

    /// Closes the connection with `code` and `reason`. Frames sent before go out first. Only the first close counts,
    /// and none once the connection ended by itself: its socket is already gone.
    func close(code: UInt16, reason: String, drain: Bool = false) {
        guard closed.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        onClose(CloseRequest(code: code, reason: reason, drain: drain))
    }

    /// Stops sending (the connection ended by itself).
    func finish() {
        closed.store(true, ordering: .relaxed)
    }
}

/// Frames for several connections gathered while one batch is handled, then sent with one `send(contentsOf:)` per
/// connection: a batch of a few hundred messages to five agents is five event-loop tasks, not a thousand.
struct OutboundBatch {
    private var byConnection: [UInt64: (connection: Connection, frames: [ByteBuffer])] = [:]

    mutating func add(_ frame: ByteBuffer, to connection: Connection) {
        byConnection[connection.id, default: (connection, [])].frames.append(frame)
    }

    func send() {
        for (connection, frames) in byConnection.values { connection.outbox.send(contentsOf: frames) }
    }
}
