// The support workflow on the wire: conversation status, assignment and private notes. docs/PROTOCOL.md describes
// each frame with an example.

/// Where a conversation stands. A customer's new message makes a snoozed or resolved conversation open again, and a
/// snooze with a time ends by itself at that time.
public enum ConversationStatus: String, Codable, Sendable, CaseIterable {
    case open
    case snoozed
    case resolved
}

/// Agents only: sets a conversation's status. `until` (epoch milliseconds) only with `snoozed`; without it the
/// snooze lasts until the customer writes.
public struct SetStatus: Codable, Sendable, Equatable {
    public var requestId: String?
    public var conversation: String
    public var status: ConversationStatus
    public var until: Int64?

    public init(requestId: String? = nil, conversation: String, status: ConversationStatus, until: Int64? = nil) {
        self.requestId = requestId
        self.conversation = conversation
        self.status = status
        self.until = until
    }
}

/// Agents only: assigns a conversation to an agent (themselves, to take it), or unassigns it (`agent` null).
public struct Assign: Codable, Sendable, Equatable {
    public var requestId: String?
    public var conversation: String
    public var agent: String?

    public init(requestId: String? = nil, conversation: String, agent: String?) {
        self.requestId = requestId
        self.conversation = conversation
        self.agent = agent
    }
}

/// Agents only: a private note in a conversation, seen by agents and never by the customer. Acknowledged like a
/// `send` (an `ack` with the agents' numbering).
public struct Note: Codable, Sendable, Equatable {
    public var clientId: String
    public var conversation: String
    public var text: String
    public var attachments: [AttachmentReference]?

    public init(clientId: String, conversation: String, text: String, attachments: [AttachmentReference]? = nil) {
        self.clientId = clientId
        self.conversation = conversation
        self.text = text
        self.attachments = attachments
    }
}

/// What a workflow entry of an agent's timeline records (a `message` with `private: true` and this `event`).
public struct ConversationEvent: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        case status
        case assignment
    }

    public var kind: Kind
    /// `status` events: the status set, and a snooze's end.
    public var status: ConversationStatus?
    public var until: Int64?
    /// `assignment` events: the agent assigned; absent when the conversation was unassigned.
    public var assignee: String?

    public init(kind: Kind, status: ConversationStatus? = nil, until: Int64? = nil, assignee: String? = nil) {
        self.kind = kind
        self.status = status
        self.until = until
        self.assignee = assignee
    }

    public static func status(_ status: ConversationStatus, until: Int64? = nil) -> ConversationEvent {
        ConversationEvent(kind: .status, status: status, until: until)
    }

    public static func assignment(_ agent: String?) -> ConversationEvent {
        ConversationEvent(kind: .assignment, assignee: agent)
    }
}

/// The answer to `setStatus` and `assign`: the change as stored, and the agents' sequence number of the timeline
/// entry that records it. `duplicate` when the same request id was stored before (nothing changed again).
public struct ConversationUpdated: Codable, Sendable, Equatable {
    public var requestId: String?
    public var conversation: String
    public var seq: Int
    public var event: ConversationEvent
    public var duplicate: Bool

    public init(requestId: String?, conversation: String, seq: Int, event: ConversationEvent, duplicate: Bool) {
        self.requestId = requestId
        self.conversation = conversation
        self.seq = seq
        self.event = event
        self.duplicate = duplicate
    }
}

/// A prepared answer agents insert by name (`cannedReplies`, sent to agents after `welcome` and whenever the list
/// changes). `{customer}` and `{agent}` in the text stand for the conversation's customer and the agent sending it.
public struct CannedReply: Codable, Sendable, Equatable {
    public var name: String
    public var text: String

    public init(name: String, text: String) {
        self.name = name
        self.text = text
    }

    /// The text with its placeholders filled in.
    public func expanded(customer: String, agent: String) -> String {
        text.replacingOccurrences(of: "{customer}", with: customer).replacingOccurrences(of: "{agent}", with: agent)
    }

    /// Names: 1 to 64 letters, digits, '-' and '_', so that they are easy to type and complete.
    public static func isValidName(_ name: String) -> Bool {
        (1...64).contains(name.count) && name.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-" || $0 == "_") }
    }

    /// Longest text: a reply, not a document.
    public static let maxTextBytes = 8 * 1024
}

/// `{"type":"cannedReplies","replies":[...]}`: every canned reply, sorted by name.
public struct CannedReplies: Codable, Sendable, Equatable {
    public var replies: [CannedReply]

    public init(replies: [CannedReply]) {
        self.replies = replies
    }
}
