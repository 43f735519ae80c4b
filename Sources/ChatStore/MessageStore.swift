import ChatProtocol

/// A message to store, already checked by the server (sender's right to the conversation, sizes).
public struct OutgoingMessage: Sendable {
    public enum Target: Sendable, Equatable {
        /// One conversation, named by its customer.
        case conversation(String)
        /// Every customer's conversation (agents only).
        case allCustomers
    }

    public var sender: String
    public var senderRole: Role
    public var clientId: String
    public var text: String
    public var target: Target
    /// Finished uploads of the sender, resolved by the server; stored with the message in the same transaction.
    public var attachments: [Attachment]
    public var kind: MessageKind

    public init(sender: String, senderRole: Role, clientId: String, text: String, target: Target, attachments: [Attachment] = [],
                kind: MessageKind = .message) {
        self.kind = kind
        self.sender = sender
        self.senderRole = senderRole
        self.clientId = clientId
        self.text = text
        self.target = target
        self.attachments = attachments
    }
}

/// What a row of a conversation's timeline is. Only messages are the customer's to see; notes and workflow events
/// are for agents, and take no number in the customer's numbering.
public enum MessageKind: Sendable, Equatable {
    case message
    case note
    /// A status change or an assignment: the conversation's state changes in the same transaction.
    case event(ConversationEvent)

    /// The `messages.kind` column.
    public var column: String {
        switch self {
        case .message: "message"
        case .note: "note"
        case .event(let event): event.kind.rawValue
        }
    }
}

/// Who reads a conversation: agents see every row under `seq`; the customer sees messages only, numbered by
/// `customer_seq`.
public enum Audience: Sendable, Equatable {
    case agents
    case customer

    public init(_ role: Role) {
        self = role == .agent ? .agents : .customer
    }
}

/// A conversation's status and assignee as stored. The status stored is not the whole story: a customer's message
/// reopens a resolved or snoozed conversation, and a snooze ends at its time, without a write (see the schema).
public struct ConversationWorkflow: Sendable, Equatable {
    public var status: ConversationStatus
    public var snoozedUntil: Int64?
    /// The conversation's customer message count when the status was set.
    public var statusCustomerMessages: Int
    public var assignee: String?

    public init(status: ConversationStatus = .open, snoozedUntil: Int64? = nil, statusCustomerMessages: Int = 0,
                assignee: String? = nil) {
        self.status = status
        self.snoozedUntil = snoozedUntil
        self.statusCustomerMessages = statusCustomerMessages
        self.assignee = assignee
    }

    /// The status in effect, given the conversation's customer message count now.
    public func status(customerMessages: Int, now: Int64) -> ConversationStatus {
        guard status != .open, customerMessages <= statusCustomerMessages else { return .open }
        if status == .snoozed, let snoozedUntil, snoozedUntil <= now { return .open }
        return status
    }

    /// When a snooze in effect ends by itself.
    public func snoozeEnd(customerMessages: Int, now: Int64) -> Int64? {
        status(customerMessages: customerMessages, now: now) == .snoozed ? snoozedUntil : nil
    }

    /// After `event`, recorded when the conversation had `customerMessages` customer messages.
    public mutating func apply(_ event: ConversationEvent, customerMessages: Int) {
        switch event.kind {
        case .status:
            status = event.status ?? .open
            snoozedUntil = status == .snoozed ? event.until : nil
            statusCustomerMessages = customerMessages
        case .assignment:
            assignee = event.assignee
        }
    }
}

/// What happened to one `OutgoingMessage` of a batch.
public enum CommitOutcome: Sendable, Equatable {
    /// Stored now, or found stored before under the same client id (`duplicate`): then nothing new was stored.
    /// A broadcast has one message per conversation.
    case stored([ChatMessage], duplicate: Bool)
    /// Rejected before storing (e.g. no such customer). Nothing was stored for it.
    case rejected(ErrorCode, String)
}

/// A conversation's counters: its newest sequence number and how many of its messages the customer sent.
public struct ConversationState: Sendable, Equatable {
    public var lastSeq: Int
    public var customerMessages: Int
    /// The newest number in the customer's numbering (messages only).
    public var customerLastSeq: Int

    public init(lastSeq: Int = 0, customerMessages: Int = 0, customerLastSeq: Int? = nil) {
        self.lastSeq = lastSeq
        self.customerMessages = customerMessages
        self.customerLastSeq = customerLastSeq ?? lastSeq
    }

    /// Advances the counters for one more row of `kind` from `role`; returns its (seq, customer seq).
    public mutating func advance(for kind: MessageKind, from role: Role) -> (seq: Int, customerSeq: Int?) {
        lastSeq += 1
        if kind == .message && role == .customer { customerMessages += 1 }
        guard kind == .message else { return (lastSeq, nil) }
        customerLastSeq += 1
        return (lastSeq, customerLastSeq)
    }
}

/// A conversation as the roster starts from.
public struct ConversationSummary: Sendable, Equatable {
    public var customer: String
    public var state: ConversationState
    public var lastMessage: MessagePreview?
    public var workflow: ConversationWorkflow

    public init(customer: String, state: ConversationState, lastMessage: MessagePreview?,
                workflow: ConversationWorkflow = ConversationWorkflow()) {
        self.workflow = workflow
        self.customer = customer
        self.state = state
        self.lastMessage = lastMessage
    }

    /// The roster shows at most 120 characters of the last message.
    public static func previewText(_ text: String) -> String {
        text.count <= 120 ? text : String(text.prefix(119)) + "…"
    }
}

/// Conversations and their messages. The server writes through one `commit` per batch (group commit); every
/// implementation allocates each conversation's sequence numbers unique and gap-free even when other writers
/// (another process, another node) commit to the same conversation.
public protocol MessageStore: WorkflowHistory {
    /// Stores a batch of messages in one transaction, in order. Each message gets the next sequence number of its
    /// conversation; a message whose (sender, client id, conversation) was stored before is returned as it was
    /// (`duplicate`), and nothing new is stored for it. Throws when nothing of the batch was stored.
    func commit(_ batch: [OutgoingMessage], now: Int64) async throws(StoreError) -> [CommitOutcome]

    /// Every customer: those with a token (even revoked) and those with a conversation.
    func customers() async throws(StoreError) -> [String]

    /// A page of a conversation. `before`: the `limit` messages just below it; `after`: just above it; neither:
    /// the newest page. Always ascending by seq. `hasMore` says whether more exist further in that direction.
    /// `audience` `.customer`: messages only, numbered (and paged by) the customer's numbering.
    func history(customer: String, before: Int?, after: Int?, limit: Int, audience: Audience) async throws(StoreError)
        -> (messages: [ChatMessage], hasMore: Bool)

    /// State of every conversation for the roster, with its last message.
    func conversationSummaries() async throws(StoreError) -> [ConversationSummary]

    /// Whether `customer` has a conversation, the role of the user of that name if any, and the first seq sent at
    /// or after `since` (for transcripts).
    func transcriptStart(customer: String, since: Int64?) async throws(StoreError)
        -> (conversationExists: Bool, role: Role?, firstSeq: Int?)

    /// Number of stored messages (all conversations).
    func messageCount() async throws(StoreError) -> Int
}

extension MessageStore {
    public func commit(_ batch: [OutgoingMessage]) async throws(StoreError) -> [CommitOutcome] {
        try await commit(batch, now: epochMilliseconds())
    }

    /// The newest page.
    public func history(customer: String, limit: Int, audience: Audience = .agents) async throws(StoreError)
        -> (messages: [ChatMessage], hasMore: Bool) {
        try await history(customer: customer, before: nil, after: nil, limit: limit, audience: audience)
    }

    /// The page just above `after`.
    public func history(customer: String, after: Int, limit: Int, audience: Audience = .agents) async throws(StoreError)
        -> (messages: [ChatMessage], hasMore: Bool) {
        try await history(customer: customer, before: nil, after: after, limit: limit, audience: audience)
    }
}
