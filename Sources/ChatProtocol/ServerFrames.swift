// Frames the server sends. docs/PROTOCOL.md describes each with an example; keep the two in step.

/// Limits the server enforces, told to the client in `welcome` so it can check before sending.
public struct Limits: Codable, Sendable, Equatable {
    public var maxTextBytes: Int
    public var messagesPerSecond: Double
    public var burst: Int
    public var historyPageMax: Int
    /// Media limits (absent from servers without media): largest upload, uploads in progress per user, bytes a
    /// user may upload per UTC day, and the largest WebSocket frame (binary upload chunks included).
    public var maxUploadBytes: Int?
    public var maxUploadsInFlight: Int?
    public var uploadBytesPerDay: Int?
    public var maxFrameBytes: Int?

    public init(maxTextBytes: Int, messagesPerSecond: Double, burst: Int, historyPageMax: Int,
                maxUploadBytes: Int? = nil, maxUploadsInFlight: Int? = nil, uploadBytesPerDay: Int? = nil,
                maxFrameBytes: Int? = nil) {
        self.maxTextBytes = maxTextBytes
        self.messagesPerSecond = messagesPerSecond
        self.burst = burst
        self.historyPageMax = historyPageMax
        self.maxUploadBytes = maxUploadBytes
        self.maxUploadsInFlight = maxUploadsInFlight
        self.uploadBytesPerDay = uploadBytesPerDay
        self.maxFrameBytes = maxFrameBytes
    }
}

public struct Welcome: Codable, Sendable, Equatable {
    public var protocolVersion: Int
    public var user: String
    public var role: Role
    public var limits: Limits
    public var serverTime: Int64

    enum CodingKeys: String, CodingKey {
        case protocolVersion = "protocol", user, role, limits, serverTime
    }

    public init(protocolVersion: Int, user: String, role: Role, limits: Limits, serverTime: Int64) {
        self.protocolVersion = protocolVersion
        self.user = user
        self.role = role
        self.limits = limits
        self.serverTime = serverTime
    }
}

/// A stored message as every recipient sees it.
public struct ChatMessage: Codable, Sendable, Equatable {
    /// Server-wide id, increasing in commit order.
    public var id: Int64
    /// The customer whose conversation this is.
    public var conversation: String
    /// Position in the conversation: 1, 2, 3... without gaps.
    public var seq: Int
    public var sender: String
    public var senderRole: Role
    public var clientId: String
    public var text: String
    /// Unix epoch milliseconds, server clock.
    public var sentAt: Int64
    public var broadcast: Bool
    /// Files attached to the message, in the sender's order; absent when there are none.
    public var attachments: [Attachment]?
    /// Agents only: true for a private note or a workflow event, which the customer never sees; absent otherwise.
    public var isPrivate: Bool?
    /// Agents only: the status change or assignment this timeline entry records.
    public var event: ConversationEvent?
    /// The customer's sequence number of this message (their numbering leaves out notes and events; nil for those).
    /// Never on the wire: the server sends it as `seq` to the customer.
    public var customerSeq: Int?

    enum CodingKeys: String, CodingKey {
        case id, conversation, seq, sender, senderRole, clientId, text, sentAt, broadcast, attachments, event
        case isPrivate = "private"
    }

    public init(id: Int64, conversation: String, seq: Int, sender: String, senderRole: Role, clientId: String,
                text: String, sentAt: Int64, broadcast: Bool, attachments: [Attachment]? = nil, isPrivate: Bool? = nil,
                event: ConversationEvent? = nil, customerSeq: Int? = nil) {
        self.attachments = attachments
        self.isPrivate = isPrivate
        self.event = event
        self.customerSeq = customerSeq
        self.id = id
        self.conversation = conversation
        self.seq = seq
        self.sender = sender
        self.senderRole = senderRole
        self.clientId = clientId
        self.text = text
        self.sentAt = sentAt
        self.broadcast = broadcast
    }

    /// Whether the customer may see it: not a note, not a workflow event.
    public var isVisibleToCustomer: Bool { isPrivate != true }

    /// The message as its customer sees it: their own numbering. Nil for what they never see.
    public var forCustomer: ChatMessage? {
        guard isVisibleToCustomer else { return nil }
        guard let customerSeq, customerSeq != seq else { return self }
        var copy = self
        copy.seq = customerSeq
        return copy
    }
}

/// "Your message is stored." Sent to the sender's connection only, after the commit.
public struct Ack: Codable, Sendable, Equatable {
    public var clientId: String
    public var id: Int64
    public var conversation: String
    public var seq: Int
    public var sentAt: Int64
    /// True when this client id had been stored before: nothing new was stored or delivered.
    public var duplicate: Bool

    public init(clientId: String, id: Int64, conversation: String, seq: Int, sentAt: Int64, duplicate: Bool) {
        self.clientId = clientId
        self.id = id
        self.conversation = conversation
        self.seq = seq
        self.sentAt = sentAt
        self.duplicate = duplicate
    }
}

public struct BroadcastAck: Codable, Sendable, Equatable {
    public var clientId: String
    /// Number of conversations the broadcast was stored in.
    public var conversations: Int
    public var sentAt: Int64
    public var duplicate: Bool

    public init(clientId: String, conversations: Int, sentAt: Int64, duplicate: Bool) {
        self.clientId = clientId
        self.conversations = conversations
        self.sentAt = sentAt
        self.duplicate = duplicate
    }
}

public struct HistoryPage: Codable, Sendable, Equatable {
    public var requestId: String?
    public var conversation: String
    /// Ascending by seq.
    public var messages: [ChatMessage]
    /// More messages exist beyond this page in the direction asked.
    public var hasMore: Bool

    public init(requestId: String?, conversation: String, messages: [ChatMessage], hasMore: Bool) {
        self.requestId = requestId
        self.conversation = conversation
        self.messages = messages
        self.hasMore = hasMore
    }
}

/// End of the backlog sent after `welcome`: from here on, messages arrive live.
public struct Synced: Codable, Sendable, Equatable {
    /// Highest sequence sent so far, per conversation replayed.
    public var lastSeqs: [String: Int]

    public init(lastSeqs: [String: Int]) {
        self.lastSeqs = lastSeqs
    }
}

/// Last message of a conversation, for the roster.
public struct MessagePreview: Codable, Sendable, Equatable {
    public var sender: String
    /// At most 120 characters of the text.
    public var text: String
    public var sentAt: Int64
    public var seq: Int

    public init(sender: String, text: String, sentAt: Int64, seq: Int) {
        self.sender = sender
        self.text = text
        self.sentAt = sentAt
        self.seq = seq
    }
}

/// One customer as an agent sees them. `unread` is per agent: customer messages after this agent's read marker.
public struct RosterEntry: Codable, Sendable, Equatable {
    public var customer: String
    public var online: Bool
    public var lastSeq: Int
    public var lastMessage: MessagePreview?
    public var unread: Int
    public var readSeq: Int
    public var status: ConversationStatus
    /// A snooze's end (epoch milliseconds), when it has one.
    public var until: Int64?
    public var assignee: String?

    public init(customer: String, online: Bool, lastSeq: Int, lastMessage: MessagePreview?, unread: Int, readSeq: Int,
                status: ConversationStatus = .open, until: Int64? = nil, assignee: String? = nil) {
        self.status = status
        self.until = until
        self.assignee = assignee
        self.customer = customer
        self.online = online
        self.lastSeq = lastSeq
        self.lastMessage = lastMessage
        self.unread = unread
        self.readSeq = readSeq
    }
}

/// Someone read a conversation up to `seq` (read receipt for the other side).
public struct ReadReceipt: Codable, Sendable, Equatable {
    public var conversation: String
    public var reader: String
    public var readerRole: Role
    public var seq: Int

    public init(conversation: String, reader: String, readerRole: Role, seq: Int) {
        self.conversation = conversation
        self.reader = reader
        self.readerRole = readerRole
        self.seq = seq
    }
}

public struct TypingNotice: Codable, Sendable, Equatable {
    public var conversation: String
    public var user: String
    public var role: Role
    public var active: Bool

    public init(conversation: String, user: String, role: Role, active: Bool) {
        self.conversation = conversation
        self.user = user
        self.role = role
        self.active = active
    }
}

/// Sent to customers: how many agents are connected.
public struct Presence: Codable, Sendable, Equatable {
    public var agentsOnline: Int

    public init(agentsOnline: Int) {
        self.agentsOnline = agentsOnline
    }
}

/// A rejected frame. The connection stays open; nothing was stored.
public struct ErrorFrame: Codable, Sendable, Equatable {
    public var code: ErrorCode
    public var message: String
    /// The `clientId` of the rejected `send`/`broadcast`, or the `requestId` of a rejected request, when known.
    public var ref: String?
    /// For `rate_limited`: when to try again.
    public var retryAfterMs: Int?

    public init(code: ErrorCode, message: String, ref: String? = nil, retryAfterMs: Int? = nil) {
        self.code = code
        self.message = message
        self.ref = ref
        self.retryAfterMs = retryAfterMs
    }
}

/// Every frame the server sends.
public enum ServerFrame: Sendable, Equatable {
    case welcome(Welcome)
    case message(ChatMessage)
    case ack(Ack)
    case broadcastAck(BroadcastAck)
    case history(HistoryPage)
    case synced(Synced)
    case roster([RosterEntry])
    case rosterUpdate([RosterEntry])
    case read(ReadReceipt)
    case typing(TypingNotice)
    case presence(Presence)
    case pong(requestId: String?)
    case error(ErrorFrame)
    case uploadReady(UploadReady)
    case uploadProgress(UploadProgress)
    case uploadDone(UploadDone)
    case searchResults(SearchResults)
    case conversationUpdated(ConversationUpdated)
    case cannedReplies(CannedReplies)
}
