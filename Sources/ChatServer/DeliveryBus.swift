import ChatProtocol
import ChatStore
import Synchronization

/// A stored message ready for fan-out: the message, its frame encoded once for every recipient, and the local
/// connection that sent it (that one got an ack instead), if any.
struct Delivery: Sendable {
    var message: ChatMessage
    /// The frame agents get.
    var frame: EncodedFrame
    /// The frame the customer gets (their numbering); nil for notes and workflow events, which they never see.
    var customerFrame: EncodedFrame?
    var origin: UInt64?

    /// Encodes `message` for agents and, when it is theirs to see, for the customer: one buffer for both while the
    /// two numberings agree (a conversation without notes or events).
    init?(_ message: ChatMessage, origin: UInt64?) {
        guard let buffer = try? encodeFrame(.message(message)) else { return nil }
        self.message = message
        self.origin = origin
        frame = EncodedFrame(buffer: buffer, conversation: message.conversation, seq: message.seq)
        guard let visible = message.forCustomer else { return }
        if visible.seq == message.seq {
            customerFrame = frame
        } else if let customerBuffer = try? encodeFrame(.message(visible)) {
            customerFrame = EncodedFrame(buffer: customerBuffer, conversation: message.conversation, seq: visible.seq)
        }
    }
}

/// A user's first connection on a node opened, or the last one closed.
struct PresenceChange: Sendable, Equatable {
    var user: String
    var role: Role
    var online: Bool
    var node: String
}

/// Everything the hub fans out, from whichever part of the server (or, with a shared bus, whichever node) it
/// comes. Frames are encoded once by the publisher.
enum DeliveryEvent: Sendable {
    /// The new messages of one committed batch, in commit order.
    case committed([Delivery])
    /// A typing notice in `conversation`, for its customer and every agent except `origin`.
    case typing(conversation: String, frame: EncodedFrame, origin: UInt64?)
    /// A read marker was stored: rosters change, and the others get a receipt (the customer in their numbering).
    case read(StoredReadMarker, role: Role, origin: UInt64?)
    case presence(PresenceChange)
    /// Tokens were revoked: their sessions' connections are cut.
    case revoked(sessions: Set<Int64>)
    /// Committed messages were missed and cannot be told apart (with several nodes: batches pruned before this node
    /// read them): every connection here is closed so that its client reconnects and resumes by sequence.
    case missed
}

/// Receives every event published on a bus.
protocol DeliverySubscriber: Sendable {
    func deliver(_ event: DeliveryEvent) async
}

/// Between commit and fan-out. Publishers (the message writer, sessions, the revocation watch, connection
/// opening and closing) never reach the hub directly, so that a bus shared by several nodes can carry the same
/// events between them. Each publisher's events arrive in the order it published them.
protocol DeliveryBus: Sendable {
    /// This node's name in presence changes.
    var node: String { get }
    func publish(_ event: DeliveryEvent) async
    func subscribe(_ subscriber: any DeliverySubscriber) async
}

/// The bus of a single process: events go straight to the subscribers, with no hop of their own (an actor here
/// would put one between every commit and its fan-out). The subscriber list is set at start-up and only read after.
final class LocalDeliveryBus: DeliveryBus {
    let node = "local"
    private let subscribers = Mutex<[any DeliverySubscriber]>([])

    func publish(_ event: DeliveryEvent) async {
        for subscriber in subscribers.withLock({ $0 }) { await subscriber.deliver(event) }
    }

    func subscribe(_ subscriber: any DeliverySubscriber) async {
        subscribers.withLock { $0.append(subscriber) }
    }
}
