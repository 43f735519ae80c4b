import ChatProtocol
import Foundation
import HummingbirdWebSocket
import NIOCore

/// The frame loop state of one authenticated connection: checks each frame against the limits, decodes it and
/// hands it to the feature that handles it (`ChatFrames`, `HistoryFrames`, `UploadFrames`, `WorkflowFrames`,
/// `SearchFrames`). Owned by the connection's reading task; nothing else touches it.
struct FrameDispatcher {
    private var context: FrameContext
    private var uploads = UploadFrames()
    private let codec = FrameCodec()

    init(connection: Connection, services: ChatServices) {
        context = FrameContext(connection: connection, services: services)
    }

    mutating func receive(_ message: WebSocketMessage) async {
        let receivedAt = ContinuousClock.now
        switch message {
        case .binary(let bytes):
            await uploads.receive(bytes, in: &context)
        case .text(let text):
            uploads.textFrameArrived()
            let size = text.utf8.count
            let maxTextBytes = context.configuration.maxTextBytes
            // Far over the text limit: refuse without parsing.
            if size > maxTextBytes + 16 * 1024 {
                context.reject(.tooLarge, "frame of \(size) bytes is over the limit; text may be at most \(maxTextBytes) bytes")
                return
            }
            let data = Data(text.utf8)
            if let wait = context.limits.admit(at: receivedAt) {
                // The reference tells the client which message to resend after the wait.
                context.reject(.rateLimited, "too many frames: at most \(context.configuration.messagesPerSecond) per second",
                               ref: codec.reference(in: data), retryAfterMs: wait)
                return
            }
            let frame: ClientFrame
            do {
                frame = try codec.decodeClientFrame(data)
            } catch {
                context.reject(error.code, error.message, ref: codec.reference(in: data))
                return
            }
            await handle(frame, receivedAt: receivedAt)
        }
    }

    private mutating func handle(_ frame: ClientFrame, receivedAt: ContinuousClock.Instant) async {
        switch frame {
        case .hello:
            context.reject(.alreadyAuthenticated, "hello was already accepted on this connection")
        case .send(let send):
            await ChatFrames.send(send, receivedAt: receivedAt, in: &context)
        case .broadcast(let broadcast):
            await ChatFrames.broadcast(broadcast, receivedAt: receivedAt, in: &context)
        case .typing(let typing):
            await ChatFrames.typing(typing, in: &context)
        case .history(let request):
            await HistoryFrames.history(request, in: &context)
        case .read(let marker):
            await HistoryFrames.read(marker, in: &context)
        case .ping(let requestId):
            context.send(.pong(requestId: requestId))
        case .uploadBegin(let begin):
            await uploads.begin(begin, in: &context)
        case .uploadResume(let resume):
            await uploads.resume(resume, in: &context)
        case .uploadEnd(let end):
            await uploads.end(end.uploadId, in: &context)
        case .uploadCancel(let cancel):
            await uploads.cancel(cancel.uploadId, in: &context)
        case .search(let request):
            await SearchFrames.search(request, in: &context)
        case .setStatus(let request):
            await WorkflowFrames.setStatus(request, receivedAt: receivedAt, in: &context)
        case .assign(let request):
            await WorkflowFrames.assign(request, receivedAt: receivedAt, in: &context)
        case .note(let note):
            await WorkflowFrames.note(note, receivedAt: receivedAt, in: &context)
        }
    }

    /// The connection ended: its upload waits for a resume.
    mutating func connectionEnded() async {
        await uploads.connectionEnded(context)
    }
}
