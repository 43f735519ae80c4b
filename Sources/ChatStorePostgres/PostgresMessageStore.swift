import ChatProtocol
import ChatStore
import Logging
import PostgresNIO
import Synchronization

/// Conversations and messages in PostgreSQL. Commits are `PostgresBatch`es.
public struct PostgresMessageStore: MessageStore {
    let database: PostgresDatabase

    public init(database: PostgresDatabase) {
        self.database = database
    }

    static let columns = """
        m.id, m.seq, m.sender, m.sender_role, m.client_id, m.body, m.sent_at, m.broadcast, m.kind, m.customer_seq, \
        m.event_status, m.event_until, m.event_assignee
        """

    public func commit(_ batch: [OutgoingMessage], now: Int64) async throws(StoreError) -> [CommitOutcome] {
        let logger = database.logger
        let node = database.node
        try await createConversations(for: batch, now: now)
        let resendMet = ResendFlag()
        let (outcomes, opened) = try await database.withTransaction("storing messages") { connection in
            var writer = PostgresBatch(connection: connection, logger: logger, now: now, node: node,
                                       checkResends: resendMet.value.withLock { $0 })
            do {
                return (try await writer.commit(batch), writer.lockedConversations)
            } catch let failure as PostgresFailure where failure.sqlState == PostgresBatch.resendMet.sqlState {
                resendMet.value.withLock { $0 = true }
                throw failure
            }
        }
        database.knownConversations.withLock { $0.formUnion(opened) }
        return outcomes
    }

    /// Creates the conversations the batch needs that do not exist yet, before the batch's transaction and in name
    /// order: created inside it, two nodes creating the same two conversations in opposite orders would deadlock.
    /// A customer's message opens their conversation; an agent's only a conversation with an existing customer.
    private func createConversations(for batch: [OutgoingMessage], now: Int64) async throws(StoreError) {
        var byCustomers: Set<String> = []
        var byAgents: Set<String> = []
        var broadcast = false
        for message in batch {
            switch message.target {
            case .conversation(let customer):
                if message.senderRole == .customer { byCustomers.insert(customer) } else { byAgents.insert(customer) }
            case .allCustomers:
                broadcast = true
            }
        }
        let known = database.knownConversations.withLock { known in byCustomers.union(byAgents).filter(known.contains) }
        byCustomers.subtract(known)
        byAgents.subtract(known)
        guard !byCustomers.isEmpty || !byAgents.isEmpty || broadcast else { return }
        let logger = database.logger
        let (customers, agents, everyone) = (byCustomers.sorted(), byAgents.subtracting(byCustomers).sorted(), broadcast)
        try await database.withConnection("opening conversations") { connection in
            if !customers.isEmpty {
                try await connection.run("""
                    INSERT INTO conversations (customer, created_at)
                    SELECT name, \(now) FROM unnest(\(customers)::text[]) AS name ORDER BY name ON CONFLICT (customer) DO NOTHING
                    """, logger: logger)
            }
            if !agents.isEmpty || everyone {
                try await connection.run("""
                    INSERT INTO conversations (customer, created_at)
                    SELECT DISTINCT username, \(now) FROM sessions
                    WHERE role = 'customer' AND (\(everyone) OR username = ANY(\(agents)::text[]))
                    ORDER BY username ON CONFLICT (customer) DO NOTHING
                    """, logger: logger)
            }
        }
    }

    static func allCustomers(on connection: PostgresConnection, logger: Logger) async throws -> [String] {
        try await connection.rows("""
            SELECT username AS customer FROM sessions WHERE role = 'customer'
            UNION SELECT customer FROM conversations ORDER BY 1
            """, logger: logger).map { try $0.get("customer") }
    }

    public func customers() async throws(StoreError) -> [String] {
        let logger = database.logger
        return try await database.withConnection("listing customers") { try await Self.allCustomers(on: $0, logger: logger) }
    }

    public func history(customer: String, before: Int?, after: Int?, limit: Int, audience: Audience) async throws(StoreError)
        -> (messages: [ChatMessage], hasMore: Bool) {
        let limit = Int64(max(1, limit))
        let logger = database.logger
        // The customer's pages run on their own numbering, which only messages have.
        let seq = audience == .customer ? "m.customer_seq" : "m.seq"
        return try await database.withConnection("reading history") { connection in
            var rows: [PostgresRandomAccessRow]
            if let after {
                rows = try await connection.rows("""
                    SELECT \(unescaped: Self.columns) FROM messages m JOIN conversations c ON c.id = m.conversation_id
                    WHERE c.customer = \(customer) AND \(unescaped: seq) > \(Int64(after)) ORDER BY \(unescaped: seq) ASC LIMIT \(limit + 1)
                    """, logger: logger)
            } else {
                rows = try await connection.rows("""
                    SELECT \(unescaped: Self.columns) FROM messages m JOIN conversations c ON c.id = m.conversation_id
                    WHERE c.customer = \(customer) AND \(unescaped: seq) < \(Int64(before ?? Int.max))
                    ORDER BY \(unescaped: seq) DESC LIMIT \(limit + 1)
                    """, logger: logger)
            }
            let hasMore = rows.count > Int(limit)
            rows = Array(rows.prefix(Int(limit)))
            if after == nil { rows.reverse() }
            var messages = try rows.compactMap { try ChatMessage(postgres: $0, conversation: customer) }
            if audience == .customer { messages = messages.compactMap(\.forCustomer) }
            return (try await PostgresAttachments.fill(messages, on: connection, logger: logger), hasMore)
        }
    }

    public func conversationSummaries() async throws(StoreError) -> [ConversationSummary] {
        let logger = database.logger
        return try await database.withConnection("reading conversations") { connection in
            try await connection.rows("""
                SELECT c.customer, c.last_seq, c.customer_messages, c.customer_last_seq, c.status, c.snoozed_until,
                    c.status_customer_messages, c.assignee, m.sender, m.body, m.sent_at
                FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.id AND m.seq = c.last_seq
                """, logger: logger).map { row in
                let lastSeq = try row.int("last_seq")
                let preview = try row.get("sender", String?.self).map { sender in
                    MessagePreview(sender: sender, text: ConversationSummary.previewText(try row.get("body", String?.self) ?? ""),
                                   sentAt: try row.get("sent_at", Int64?.self) ?? 0, seq: lastSeq)
                }
                let workflow = ConversationWorkflow(status: ConversationStatus(rawValue: try row.get("status")) ?? .open,
                                                    snoozedUntil: try row.get("snoozed_until"),
                                                    statusCustomerMessages: try row.int("status_customer_messages"),
                                                    assignee: try row.get("assignee"))
                return ConversationSummary(customer: try row.get("customer"),
                                           state: ConversationState(lastSeq: lastSeq, customerMessages: try row.int("customer_messages"),
                                                                    customerLastSeq: try row.int("customer_last_seq")),
                                           lastMessage: preview, workflow: workflow)
            }
        }
    }

    public func workflowRows(since: Int64, afterConversation: Int64, limit: Int) async throws(StoreError)
        -> (rows: [WorkflowRow], lastConversation: Int64?) {
        let logger = database.logger
        return try await database.withConnection("reading conversations for a report") { connection in
            let ids: [Int64] = try await connection.rows("""
                SELECT id FROM conversations c WHERE id > \(afterConversation)
                AND EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id AND m.sent_at >= \(since))
                ORDER BY id LIMIT \(Int64(limit))
                """, logger: logger).map { try $0.get("id") }
            guard let last = ids.last else { return ([], nil) }
            let rows = try await connection.rows("""
                SELECT c.customer, m.sender, m.sender_role, m.kind, m.broadcast, m.sent_at, m.event_status
                FROM messages m JOIN conversations c ON c.id = m.conversation_id
                WHERE m.conversation_id = ANY(\(ids))
                ORDER BY m.conversation_id, m.seq
                """, logger: logger).compactMap { row -> WorkflowRow? in
                guard let role = Role(rawValue: try row.get("sender_role", String.self)) else { return nil }
                return WorkflowRow(conversation: try row.get("customer"), sender: try row.get("sender"), senderRole: role,
                                   kind: try row.get("kind"), broadcast: try row.get("broadcast"), sentAt: try row.get("sent_at"),
                                   status: try row.get("event_status", String?.self).flatMap(ConversationStatus.init(rawValue:)))
            }
            return (rows, last)
        }
    }

    public func transcriptStart(customer: String, since: Int64?) async throws(StoreError)
        -> (conversationExists: Bool, role: Role?, firstSeq: Int?) {
        let logger = database.logger
        return try await database.withConnection("starting a transcript") { connection in
            let exists = try await !connection.rows("SELECT 1 AS found FROM conversations WHERE customer = \(customer)", logger: logger).isEmpty
            let role = try await connection.rows("SELECT role FROM sessions WHERE username = \(customer) LIMIT 1", logger: logger)
                .first.flatMap { Role(rawValue: try $0.get("role", String.self)) }
            let first = try await connection.rows("""
                SELECT min(m.seq) AS first FROM messages m JOIN conversations c ON c.id = m.conversation_id
                WHERE c.customer = \(customer) AND m.sent_at >= \(since ?? Int64.min)
                """, logger: logger).first?.get("first", Int64?.self)
            return (exists, role, first.map(Int.init))
        }
    }

    public func messageCount() async throws(StoreError) -> Int {
        let logger = database.logger
        return try await database.withConnection("counting messages") { connection in
            try await connection.rows("SELECT count(*) AS count FROM messages", logger: logger).first?.int("count") ?? 0
        }
    }

    /// Stored messages by id, in the order given, with attachments: what another node committed, for delivery here.
    public func messages(ids: [Int64]) async throws(StoreError) -> [ChatMessage] {
        let logger = database.logger
        return try await database.withConnection("reading committed messages") { connection in
            let rows = try await connection.rows("""
                SELECT \(unescaped: Self.columns), c.customer FROM messages m JOIN conversations c ON c.id = m.conversation_id
                WHERE m.id = ANY(\(ids))
                """, logger: logger)
            var byId: [Int64: ChatMessage] = [:]
            for row in rows {
                if let message = try ChatMessage(postgres: row, conversation: try row.get("customer")) { byId[message.id] = message }
            }
            let ordered = ids.compactMap { byId[$0] }
            return try await PostgresAttachments.fill(ordered, on: connection, logger: logger)
        }
    }
}

/// Set when a batch met a resend, so that its retry looks for them (see `PostgresBatch.checkResends`).
private final class ResendFlag: Sendable {
    let value = Mutex(false)
}
