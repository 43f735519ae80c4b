import ChatProtocol
import Foundation
import GRDB

/// Conversations and messages in the SQLite database.
///
/// Sequence numbers come from a cache of each conversation's counters, so that a batch needs no lookups. The cache
/// belongs to the database (every store value of one `ChatDatabase` shares it) and is trusted only while SQLite's
/// `data_version` says no other connection has committed since: a second writer (`chat-admin`, another process)
/// makes the next batch read the counters again inside its write transaction, which holds the write lock.
public struct SQLiteMessageStore: MessageStore {
    public let database: ChatDatabase

    public init(database: ChatDatabase) {
        self.database = database
    }

    public func commit(_ batch: [OutgoingMessage], now: Int64) async throws(StoreError) -> [CommitOutcome] {
        let database = self.database
        do {
            return try await database.pool.write { db in
                let version = try Int.fetchOne(db.cachedStatement(sql: "PRAGMA data_version")) ?? 0
                // Taken out of the lock, not copied (the dictionary stays uniquely referenced and is changed in
                // place), and put back after the batch: if the batch fails, the cache stays empty.
                var cached = database.conversationCache.withLock { cache in
                    defer { cache = ConversationCache() }
                    return cache
                }
                if cached.dataVersion != version { cached = ConversationCache(dataVersion: version) }
                var states = cached.conversations
                cached.conversations = [:]
                /// The counters of each conversation the batch writes to, as they were before it.
                var before: [String: ConversationState] = [:]
                var outcomes: [CommitOutcome] = []
                outcomes.reserveCapacity(batch.count)
                for message in batch {
                    switch message.target {
                    case .conversation(let customer):
                        guard let conversation = try Self.conversation(customer, in: db, states: &states, create: message.senderRole == .customer) else {
                            outcomes.append(.rejected(.unknownConversation, "no customer named \(customer)"))
                            continue
                        }
                        if before[customer] == nil { before[customer] = conversation.state }
                        // Insert first and look for the earlier copy only when the insert meets it: resends are rare,
                        // and a lookup before every insert was a query per message.
                        if let stored = try Self.insert(message, customer: customer, states: &states, broadcast: false, now: now, in: db) {
                            outcomes.append(.stored([stored], duplicate: false))
                        } else if let existing = try Self.existing(message, conversationId: conversation.id, customer: customer, in: db) {
                            outcomes.append(.stored([existing], duplicate: true))
                        } else {
                            throw StoreError.notFound("message \(message.clientId) from \(message.sender) in \(customer)")
                        }
                    case .allCustomers:
                        let previous = try Self.existingBroadcast(message, in: db)
                        if !previous.isEmpty {
                            outcomes.append(.stored(previous, duplicate: true))
                            continue
                        }
                        var stored: [ChatMessage] = []
                        for customer in try Self.allCustomers(in: db) {
                            guard let conversation = try Self.conversation(customer, in: db, states: &states, create: true) else { continue }
                            if before[customer] == nil { before[customer] = conversation.state }
                            if let message = try Self.insert(message, customer: customer, states: &states, broadcast: true, now: now, in: db) {
                                stored.append(message)
                            }
                        }
                        outcomes.append(.stored(stored, duplicate: false))
                    }
                }
                for (name, previous) in before {
                    guard let conversation = states[name], conversation.state != previous else { continue }
                    try db.cachedStatement(sql: "UPDATE conversations SET last_seq = ?, customer_messages = ?, customer_last_seq = ? WHERE id = ?")
                        .execute(arguments: [conversation.state.lastSeq, conversation.state.customerMessages,
                                             conversation.state.customerLastSeq, conversation.id])
                }
                // Put back before the commit; a commit that fails empties the cache below.
                cached.conversations = states
                database.conversationCache.withLock { $0 = cached }
                return outcomes
            }
        } catch {
            database.conversationCache.withLock { $0 = ConversationCache() }
            throw StoreError.wrap(error)
        }
    }

    private static func conversation(_ customer: String, in db: Database, states: inout [String: CachedConversation],
                                     create: Bool) throws -> CachedConversation? {
        if let state = states[customer] { return state }
        if let row = try Row.fetchOne(db.cachedStatement(sql: """
            SELECT id, last_seq, customer_messages, customer_last_seq FROM conversations WHERE customer = ?
            """), arguments: [customer]) {
            let state = CachedConversation(id: row["id"], state: ConversationState(lastSeq: row["last_seq"],
                                                                                   customerMessages: row["customer_messages"],
                                                                                   customerLastSeq: row["customer_last_seq"]))
            states[customer] = state
            return state
        }
        // Agents may only open conversations with customers that exist (have had a token).
        if !create {
            let isCustomer = try Bool.fetchOne(db, sql: "SELECT 1 FROM sessions WHERE username = ? AND role = 'customer' LIMIT 1",
                                               arguments: [customer]) ?? false
            guard isCustomer else { return nil }
        }
        try db.execute(sql: "INSERT INTO conversations (customer, created_at) VALUES (?, ?)",
                       arguments: [customer, epochMilliseconds()])
        let state = CachedConversation(id: db.lastInsertedRowID, state: ConversationState())
        states[customer] = state
        return state
    }

    private static func existing(_ message: OutgoingMessage, conversationId: Int64, customer: String, in db: Database) throws -> ChatMessage? {
        try Row.fetchOne(db.cachedStatement(sql: """
            SELECT \(ChatMessage.sqliteColumns) FROM messages m
            WHERE m.sender = ? AND m.client_id = ? AND m.conversation_id = ?
            """), arguments: [message.sender, message.clientId, conversationId]).flatMap { ChatMessage(row: $0, conversation: customer) }
            .map { try MediaCatalogRows.withAttachments([$0], in: db)[0] }
    }

    private static func existingBroadcast(_ message: OutgoingMessage, in db: Database) throws -> [ChatMessage] {
        try Row.fetchAll(db.cachedStatement(sql: """
            SELECT \(ChatMessage.sqliteColumns), c.customer
            FROM messages m JOIN conversations c ON c.id = m.conversation_id
            WHERE m.sender = ? AND m.client_id = ? AND m.broadcast = 1 ORDER BY m.id
            """), arguments: [message.sender, message.clientId]).compactMap { ChatMessage(row: $0, conversation: $0["customer"]) }
    }

    /// Stores `message` in `customer`'s conversation; nil (and nothing changed) when that sender already sent that
    /// client id there.
    private static func insert(_ message: OutgoingMessage, customer: String, states: inout [String: CachedConversation],
                               broadcast: Bool, now: Int64, in db: Database) throws -> ChatMessage? {
        guard var state = states[customer] else { throw StoreError.notFound("conversation \(customer)") }
        let (seq, customerSeq) = state.state.advance(for: message.kind, from: message.senderRole)
        let event: ConversationEvent? = if case .event(let event) = message.kind { event } else { nil }
        try db.cachedStatement(sql: """
            INSERT INTO messages (conversation_id, seq, sender, sender_role, client_id, body, sent_at, broadcast, customer_ordinal,
                                  kind, customer_seq, event_status, event_until, event_assignee)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (sender, client_id, conversation_id) DO NOTHING
            """).execute(arguments: [state.id, seq, message.sender, message.senderRole.rawValue, message.clientId,
                                     message.text, now, broadcast, state.state.customerMessages, message.kind.column, customerSeq,
                                     event?.status?.rawValue, event?.until, event?.assignee])
        guard db.changesCount > 0 else { return nil }
        states[customer] = state
        if let event { try record(event, conversationId: state.id, customerMessages: state.state.customerMessages, in: db) }
        let id = db.lastInsertedRowID
        for (position, attachment) in message.attachments.enumerated() {
            try db.cachedStatement(sql: """
                INSERT INTO attachments (message_id, position, blob_hash, name, uploader, name_mismatch) VALUES (?, ?, ?, ?, ?, ?)
                """).execute(arguments: [id, position, attachment.sha256, attachment.name, message.sender, attachment.nameMismatch])
            try db.cachedStatement(sql: "UPDATE blobs SET last_referenced_at = ? WHERE hash = ?").execute(arguments: [now, attachment.sha256])
        }
        return ChatMessage(id: id, conversation: customer, seq: seq, sender: message.sender,
                           senderRole: message.senderRole, clientId: message.clientId, text: message.text, sentAt: now,
                           broadcast: broadcast, attachments: message.attachments.isEmpty ? nil : message.attachments,
                           isPrivate: message.kind == .message ? nil : true, event: event, customerSeq: customerSeq)
    }

    /// A workflow event's change to its conversation, in the event's transaction.
    private static func record(_ event: ConversationEvent, conversationId: Int64, customerMessages: Int, in db: Database) throws {
        var workflow = ConversationWorkflow()
        workflow.apply(event, customerMessages: customerMessages)
        switch event.kind {
        case .status:
            try db.cachedStatement(sql: "UPDATE conversations SET status = ?, snoozed_until = ?, status_customer_messages = ? WHERE id = ?")
                .execute(arguments: [workflow.status.rawValue, workflow.snoozedUntil, customerMessages, conversationId])
        case .assignment:
            try db.cachedStatement(sql: "UPDATE conversations SET assignee = ? WHERE id = ?").execute(arguments: [event.assignee, conversationId])
        }
    }

    private static func allCustomers(in db: Database) throws -> [String] {
        try String.fetchAll(db, sql: """
            SELECT username FROM sessions WHERE role = 'customer'
            UNION SELECT customer FROM conversations ORDER BY 1
            """)
    }

    public func customers() async throws(StoreError) -> [String] {
        do { return try await database.pool.read { db in try Self.allCustomers(in: db) } } catch { throw .wrap(error) }
    }

    public func history(customer: String, before: Int?, after: Int?, limit: Int, audience: Audience) async throws(StoreError)
        -> (messages: [ChatMessage], hasMore: Bool) {
        let limit = max(1, limit)
        // The customer's pages run on their own numbering, which only messages have.
        let seq = audience == .customer ? "m.customer_seq" : "m.seq"
        do {
            return try await database.pool.read { db in
                let from = "FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE c.customer = ?"
                var rows: [Row]
                if let after {
                    rows = try Row.fetchAll(db.cachedStatement(sql: "SELECT \(ChatMessage.sqliteColumns) \(from) AND \(seq) > ? ORDER BY \(seq) ASC LIMIT ?"),
                                            arguments: [customer, after, limit + 1])
                } else {
                    rows = try Row.fetchAll(db.cachedStatement(sql: "SELECT \(ChatMessage.sqliteColumns) \(from) AND \(seq) < ? ORDER BY \(seq) DESC LIMIT ?"),
                                            arguments: [customer, before ?? Int.max, limit + 1])
                }
                let hasMore = rows.count > limit
                rows = Array(rows.prefix(limit))
                if after == nil { rows.reverse() }
                var messages = rows.compactMap { ChatMessage(row: $0, conversation: customer) }
                if audience == .customer { messages = messages.compactMap(\.forCustomer) }
                return (try MediaCatalogRows.withAttachments(messages, in: db), hasMore)
            }
        } catch {
            throw .wrap(error)
        }
    }

    public func conversationSummaries() async throws(StoreError) -> [ConversationSummary] {
        do {
            return try await database.pool.read { db in
                try Row.fetchAll(db, sql: """
                    SELECT c.customer, c.last_seq, c.customer_messages, c.customer_last_seq, c.status, c.snoozed_until,
                        c.status_customer_messages, c.assignee, m.sender, m.body, m.sent_at
                    FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.id AND m.seq = c.last_seq
                    """).map { row in
                        let preview: MessagePreview? = (row["sender"] as String?).map {
                            MessagePreview(sender: $0, text: ConversationSummary.previewText(row["body"] ?? ""),
                                           sentAt: row["sent_at"] ?? 0, seq: row["last_seq"])
                        }
                        return ConversationSummary(customer: row["customer"],
                                                   state: ConversationState(lastSeq: row["last_seq"],
                                                                            customerMessages: row["customer_messages"],
                                                                            customerLastSeq: row["customer_last_seq"]),
                                                   lastMessage: preview,
                                                   workflow: ConversationWorkflow(status: ConversationStatus(rawValue: row["status"]) ?? .open,
                                                                                  snoozedUntil: row["snoozed_until"],
                                                                                  statusCustomerMessages: row["status_customer_messages"],
                                                                                  assignee: row["assignee"]))
                    }
            }
        } catch {
            throw .wrap(error)
        }
    }

    public func transcriptStart(customer: String, since: Int64?) async throws(StoreError)
        -> (conversationExists: Bool, role: Role?, firstSeq: Int?) {
        do {
            return try await database.pool.read { db in
                (try Bool.fetchOne(db, sql: "SELECT 1 FROM conversations WHERE customer = ?", arguments: [customer]) ?? false,
                 try String.fetchOne(db, sql: "SELECT role FROM sessions WHERE username = ? LIMIT 1", arguments: [customer])
                    .flatMap(Role.init(rawValue:)),
                 try Int.fetchOne(db, sql: """
                    SELECT min(m.seq) FROM messages m JOIN conversations c ON c.id = m.conversation_id
                    WHERE c.customer = ? AND m.sent_at >= ?
                    """, arguments: [customer, since ?? Int64.min]))
            }
        } catch {
            throw .wrap(error)
        }
    }

    public func workflowRows(since: Int64, afterConversation: Int64, limit: Int) async throws(StoreError)
        -> (rows: [WorkflowRow], lastConversation: Int64?) {
        do {
            return try await database.pool.read { db in
                let ids = try Int64.fetchAll(db, sql: """
                    SELECT id FROM conversations c WHERE id > ?
                    AND EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id AND m.sent_at >= ?)
                    ORDER BY id LIMIT ?
                    """, arguments: [afterConversation, since, limit])
                guard let last = ids.last else { return ([], nil) }
                let rows = try Row.fetchAll(db, sql: """
                    SELECT c.customer, m.sender, m.sender_role, m.kind, m.broadcast, m.sent_at, m.event_status
                    FROM messages m JOIN conversations c ON c.id = m.conversation_id
                    WHERE m.conversation_id IN (\(ids.map(String.init).joined(separator: ",")))
                    ORDER BY m.conversation_id, m.seq
                    """).compactMap { row -> WorkflowRow? in
                        guard let role = Role(rawValue: row["sender_role"]) else { return nil }
                        return WorkflowRow(conversation: row["customer"], sender: row["sender"], senderRole: role, kind: row["kind"],
                                           broadcast: row["broadcast"], sentAt: row["sent_at"],
                                           status: (row["event_status"] as String?).flatMap(ConversationStatus.init(rawValue:)))
                    }
                return (rows, last)
            }
        } catch {
            throw .wrap(error)
        }
    }

    public func messageCount() async throws(StoreError) -> Int {
        do { return try await database.pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM messages") ?? 0 } } catch { throw .wrap(error) }
    }
}

/// A conversation's row id with its counters, as the commit cache keeps them.
struct CachedConversation: Sendable, Equatable {
    var id: Int64
    var state: ConversationState
}

/// The commit cache of one database: valid for the `data_version` it was filled at.
struct ConversationCache: Sendable {
    var dataVersion: Int?
    var conversations: [String: CachedConversation] = [:]
}

extension ChatMessage {
    /// The message columns `init(row:conversation:)` reads, on the alias `m`.
    static let sqliteColumns = """
        m.id, m.seq, m.sender, m.sender_role, m.client_id, m.body, m.sent_at, m.broadcast, m.kind, m.customer_seq, \
        m.event_status, m.event_until, m.event_assignee
        """

    init?(row: Row, conversation: String) {
        guard let role = Role(rawValue: row["sender_role"]) else { return nil }
        self.init(id: row["id"], conversation: conversation, seq: row["seq"], sender: row["sender"], senderRole: role,
                  clientId: row["client_id"], text: row["body"], sentAt: row["sent_at"], broadcast: row["broadcast"])
        (isPrivate, event) = Self.kind(row["kind"], status: row["event_status"], until: row["event_until"], assignee: row["event_assignee"])
        customerSeq = row["customer_seq"]
    }
}

extension ChatMessage {
    /// `isPrivate` and `event` from a row's kind and event columns (both stores).
    public static func kind(_ kind: String, status: String?, until: Int64?, assignee: String?) -> (isPrivate: Bool?, event: ConversationEvent?) {
        switch kind {
        case "status": (true, .status(status.flatMap(ConversationStatus.init(rawValue:)) ?? .open, until: until))
        case "assignment": (true, .assignment(assignee))
        case "note": (true, nil)
        default: (nil, nil)
        }
    }
}
