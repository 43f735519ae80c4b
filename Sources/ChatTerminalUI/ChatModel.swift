import ChatProtocol
import Foundation

/// Where an own message is: sent and not yet acknowledged, stored by the server, read by the other side.
public enum Delivery: Sendable, Equatable {
    case sending, stored, read
}

/// The link to the server as the user sees it.
public enum ConnectionStatus: Sendable, Equatable {
    case connecting(attempt: Int)
    case syncing
    case online
    case offline(reason: String, retryInSeconds: Int)
    /// Not retried: authentication failed, protocol mismatch, token revoked.
    case failed(reason: String)
}

/// A message typed here and not yet acknowledged. Kept until its `ack` (or a replayed copy) arrives; resent with
/// the same `clientId` after every reconnect, so the server stores it exactly once.
public struct PendingMessage: Sendable, Equatable {
    public var clientId: String
    public var text: String
    /// nil for a broadcast.
    public var conversation: String?
    public var broadcast: Bool
    public var attachments: [AttachmentReference]?
    public var createdAt: Int64
    /// What the uploads became, so the own message shows its attachments once acknowledged.
    public var attachmentInfo: [Attachment]? = nil
    /// A private note (agents): sent as `note`, never seen by the customer.
    public var note = false
}

/// A line of the client's own: a notice, an error, or command output.
public struct Notice: Sendable, Equatable {
    public enum Kind: Sendable, Equatable { case info, error }
    public var kind: Kind
    public var text: String
    /// nil: shown in every conversation.
    public var conversation: String?
    public var time: Int64
    public var serial: Int
}

/// One conversation as this client knows it.
public struct Conversation: Sendable, Equatable {
    public var name: String
    public var messages: [Int: ChatMessage] = [:]
    /// Everything from the first loaded page up to here is known; nil until a page or backlog was loaded. Sent as
    /// `lastSeq(s)` on reconnect so the server replays exactly what was missed.
    public var syncedSeq: Int?
    /// Highest sequence the other side has read (customer: any agent; agent: the customer).
    public var otherReadSeq = 0
    /// Highest sequence this user marked read.
    public var readSentSeq = 0
    public var oldestLoadedSeq: Int? { messages.keys.min() }
    public var newestSeq: Int { messages.keys.max() ?? 0 }
    public var hasMoreBefore = true

    public init(name: String) { self.name = name }

    mutating func insert(_ message: ChatMessage) {
        messages[message.seq] = message
        advanceSynced()
    }

    mutating func advanceSynced() {
        guard var mark = syncedSeq else { return }
        while messages[mark + 1] != nil { mark += 1 }
        syncedSeq = mark
    }
}

/// An item of the timeline shown for a conversation.
public enum TimelineItem: Sendable, Equatable {
    case message(ChatMessage, delivery: Delivery?)
    case pending(PendingMessage)
    case notice(Notice)
}

/// What the terminal side should do after the state changed, besides redrawing.
public struct Outcome: Sendable, Equatable {
    public var frames: [ClientFrame] = []
    /// A message arrived in a conversation other than the open one (agents): ring the bell.
    public var bell = false
    /// Attachments (by number) whose previews should be fetched.
    public var newAttachments: [Int] = []
    public var quit = false
    /// An older history page arrived: scroll the view up to show it.
    public var showOlder = false
    /// Messages were refused for now (rate limit, store trouble): resend what is pending after this long.
    public var retryAfter: Duration?

    public init() {}

    mutating func merge(_ other: Outcome) {
        frames += other.frames
        bell = bell || other.bell
        if let retry = other.retryAfter { retryAfter = min(retryAfter ?? retry, retry) }
        newAttachments += other.newAttachments
        quit = quit || other.quit
        showOlder = showOlder || other.showOlder
    }
}
