// The chat wire protocol: JSON text frames, each an object with a `type` field. This file: the frames a client sends.
// docs/PROTOCOL.md describes every frame with an example; keep the two in step.

/// The protocol versions this build speaks. A client lists the versions it speaks in `hello`; the server picks the
/// highest one both know and names it in `welcome`.
public enum ProtocolVersion {
    public static let current = 1
    public static let supported: Set<Int> = [1]
}

/// Who a user is in the product. Decided by the token, never by the client.
public enum Role: String, Codable, Sendable, CaseIterable {
    case customer
    case agent
}

// MARK: - Client to server

/// First frame on every connection. `token` is needed only when the upgrade request had no
/// `Authorization: Bearer` header. `user`, when given, must match the token's user.
public struct Hello: Codable, Sendable, Equatable {
    public var protocolVersions: [Int]
    public var token: String?
    public var user: String?
    /// Customers: the highest sequence number of their conversation they already have. The server sends the rest.
    public var lastSeq: Int?
    /// Agents: the same per conversation (customer name to sequence). Conversations not named get no backlog;
    /// agents see them in the roster and page in history when they open them.
    public var lastSeqs: [String: Int]?

    enum CodingKeys: String, CodingKey {
        case protocolVersions = "protocol", token, user, lastSeq, lastSeqs
    }

    public init(protocolVersions: [Int] = [ProtocolVersion.current], token: String? = nil, user: String? = nil,
                lastSeq: Int? = nil, lastSeqs: [String: Int]? = nil) {
        self.protocolVersions = protocolVersions
        self.token = token
        self.user = user
        self.lastSeq = lastSeq
        self.lastSeqs = lastSeqs
    }
}

/// A chat message from a client. Customers may omit `conversation` (it is always their own); agents must name
/// the customer. `clientId` makes resends safe: the same id from the same sender is stored once.
public struct Send: Codable, Sendable, Equatable {
    public var clientId: String
    /// May be empty when the message has attachments.
    public var text: String
    public var conversation: String?
    /// Finished uploads of the sender to attach (at most 10).
    public var attachments: [AttachmentReference]?

    public init(clientId: String, text: String, conversation: String? = nil, attachments: [AttachmentReference]? = nil) {
        self.clientId = clientId
        self.text = text
        self.conversation = conversation
        self.attachments = attachments
    }
}

/// An agent's message to every customer, stored in each conversation.
public struct Broadcast: Codable, Sendable, Equatable {
    public var clientId: String
    public var text: String

    public init(clientId: String, text: String) {
        self.clientId = clientId
        self.text = text
    }
}

/// A page of history: messages with `seq < before` (newest page first, returned in ascending order) or
/// `seq > after` (ascending). Neither means the newest page.
public struct HistoryRequest: Codable, Sendable, Equatable {
    public var conversation: String?
    public var before: Int?
    public var after: Int?
    public var limit: Int?
    /// Echoed in the answer so a client can match it.
    public var requestId: String?

    public init(conversation: String? = nil, before: Int? = nil, after: Int? = nil, limit: Int? = nil,
                requestId: String? = nil) {
        self.conversation = conversation
        self.before = before
        self.after = after
        self.limit = limit
        self.requestId = requestId
    }
}

/// "I have read this conversation up to `seq`". Markers only move forward.
public struct ReadMarker: Codable, Sendable, Equatable {
    public var conversation: String?
    public var seq: Int

    public init(conversation: String? = nil, seq: Int) {
        self.conversation = conversation
        self.seq = seq
    }
}

/// Typing indicator; live only, never stored.
public struct Typing: Codable, Sendable, Equatable {
    public var conversation: String?
    public var active: Bool

    public init(conversation: String? = nil, active: Bool = true) {
        self.conversation = conversation
        self.active = active
    }
}

/// Every frame a client may send.
public enum ClientFrame: Sendable, Equatable {
    case hello(Hello)
    case send(Send)
    case broadcast(Broadcast)
    case history(HistoryRequest)
    case read(ReadMarker)
    case typing(Typing)
    case ping(requestId: String?)
    case uploadBegin(UploadBegin)
    case uploadResume(UploadResume)
    case uploadEnd(UploadReference)
    case uploadCancel(UploadReference)
    case search(SearchRequest)
    case setStatus(SetStatus)
    case assign(Assign)
    case note(Note)

    public var typeName: String {
        switch self {
        case .hello: "hello"
        case .send: "send"
        case .broadcast: "broadcast"
        case .history: "history"
        case .read: "read"
        case .typing: "typing"
        case .ping: "ping"
        case .uploadBegin: "uploadBegin"
        case .uploadResume: "uploadResume"
        case .uploadEnd: "uploadEnd"
        case .uploadCancel: "uploadCancel"
        case .search: "search"
        case .setStatus: "setStatus"
        case .assign: "assign"
        case .note: "note"
        }
    }
}
