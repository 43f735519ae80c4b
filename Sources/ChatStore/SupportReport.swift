import ChatProtocol

/// A row of a conversation's timeline as the support report reads it.
public struct WorkflowRow: Sendable, Equatable {
    public var conversation: String
    public var sender: String
    public var senderRole: Role
    /// `messages.kind`: message, note, status or assignment.
    public var kind: String
    public var broadcast: Bool
    public var sentAt: Int64
    public var status: ConversationStatus?

    public init(conversation: String, sender: String, senderRole: Role, kind: String, broadcast: Bool, sentAt: Int64,
                status: ConversationStatus?) {
        self.conversation = conversation
        self.sender = sender
        self.senderRole = senderRole
        self.kind = kind
        self.broadcast = broadcast
        self.sentAt = sentAt
        self.status = status
    }
}

/// The timelines a report reads, a page of conversations at a time so that a large database never sits in memory.
public protocol WorkflowHistory: Sendable {
    /// Every row, in order, of up to `limit` conversations with a row sent at or after `since`, taking conversations
    /// in id order after `afterConversation`; and the last conversation id of the page (nil when there were none).
    func workflowRows(since: Int64, afterConversation: Int64, limit: Int) async throws(StoreError)
        -> (rows: [WorkflowRow], lastConversation: Int64?)
}

/// `chat-admin report`: per agent and overall, conversations handled, messages sent, first response and resolution
/// times, counted for what happened at or after `since`.
///
/// A conversation's waiting starts with the customer's first message after it was resolved (or ever); the first
/// agent message after that is its first response, and resolving it ends it (its resolution time). Broadcasts and
/// the server's automatic assignments are not answers; notes are not messages to the customer.
public struct SupportReport: Sendable, Equatable, Encodable {
    public struct Times: Sendable, Equatable, Encodable {
        public var count = 0
        public var p50Ms: Int64?
        public var p90Ms: Int64?
    }

    public struct Line: Sendable, Equatable, Encodable {
        public var agent: String
        public var conversations: Int
        public var messages: Int
        public var firstResponse: Times
        public var resolution: Times
    }

    public var since: Int64
    public var agents: [Line]
    public var overall: Line

    /// Reads every active conversation's timeline from `history`.
    public static func make(since: Int64, from history: any WorkflowHistory, pageSize: Int = 200) async throws(StoreError) -> SupportReport {
        var builder = Builder(since: since)
        var after: Int64 = 0
        while true {
            let page = try await history.workflowRows(since: since, afterConversation: after, limit: pageSize)
            for row in page.rows { builder.add(row) }
            guard let last = page.lastConversation else { break }
            after = last
        }
        return builder.report()
    }

    /// Folds timeline rows, conversation by conversation in order, into the report.
    public struct Builder: Sendable {
        let since: Int64
        private var conversation: String?
        private var waitingSince: Int64?
        private var answered = false
        private var handled: [String: Set<String>] = [:]
        private var messages: [String: Int] = [:]
        private var firstResponses: [String: [Int64]] = [:]
        private var resolutions: [String: [Int64]] = [:]

        public init(since: Int64) {
            self.since = since
        }

        public mutating func add(_ row: WorkflowRow) {
            if row.conversation != conversation {
                conversation = row.conversation
                waitingSince = nil
                answered = false
            }
            let counts = row.sentAt >= since
            switch (row.kind, row.senderRole) {
            case ("message", .customer):
                if waitingSince == nil {
                    waitingSince = row.sentAt
                    answered = false
                }
            case ("message", .agent) where !row.broadcast:
                guard counts else { break }
                messages[row.sender, default: 0] += 1
                handled[row.sender, default: []].insert(row.conversation)
                if let start = waitingSince, !answered {
                    firstResponses[row.sender, default: []].append(row.sentAt - start)
                }
                if waitingSince != nil { answered = true }
            case ("status", _) where row.status == .resolved:
                if let start = waitingSince, counts, row.sender != AutoAssignSender.name {
                    resolutions[row.sender, default: []].append(row.sentAt - start)
                    handled[row.sender, default: []].insert(row.conversation)
                }
                waitingSince = nil
                answered = false
            default:
                break
            }
        }

        public func report() -> SupportReport {
            let names = Set(handled.keys).union(messages.keys).union(firstResponses.keys).union(resolutions.keys).sorted()
            let lines = names.map { agent in
                Line(agent: agent, conversations: handled[agent]?.count ?? 0, messages: messages[agent] ?? 0,
                     firstResponse: Self.times(firstResponses[agent] ?? []), resolution: Self.times(resolutions[agent] ?? []))
            }
            let overall = Line(agent: "all", conversations: handled.values.reduce(into: Set<String>()) { $0.formUnion($1) }.count,
                               messages: messages.values.reduce(0, +),
                               firstResponse: Self.times(firstResponses.values.flatMap { $0 }),
                               resolution: Self.times(resolutions.values.flatMap { $0 }))
            return SupportReport(since: since, agents: lines, overall: overall)
        }

        /// Nearest-rank percentiles: a time that really occurred, not an interpolation.
        static func times(_ samples: [Int64]) -> Times {
            guard !samples.isEmpty else { return Times() }
            let sorted = samples.sorted()
            func rank(_ p: Double) -> Int64 { sorted[max(0, Int((p * Double(sorted.count)).rounded(.up)) - 1)] }
            return Times(count: sorted.count, p50Ms: rank(0.5), p90Ms: rank(0.9))
        }
    }
}

/// The sender of rows the server writes itself (automatic assignment).
public enum AutoAssignSender {
    public static let name = "auto-assign"
}
