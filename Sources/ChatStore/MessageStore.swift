import ChatProtocol
import Foundation
import GRDB

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

    public init(sender: String, senderRole: Role, clientId: String, text: String, target: Target, attachments: [Attachment] = []) {
        self.sender = sender
        self.senderRole = senderRole
        self.clientId = clientId
        self.text = text
        self.target = target
        self.attachments = attachments
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

/// Running state of a conversation, kept by the writer between batches so that a batch needs no lookups.
public struct ConversationState: Sendable, Equatable {
    public var id: Int64
    public var lastSeq: Int
    public var customerMessages: Int
}

/// Messages, conversations, history and read markers.
public struct MessageStore: Sendable {
    public let database: ChatDatabase

    public init(database: ChatDatabase) {
        self.database = database
    }

    /// Stores a batch of messages in one transaction (group commit: one fsync for the whole batch).
    ///
    /// `known` is the caller's cache of conversation states for conversations this batch touches; the returned
    /// states replace them once the transaction has committed. Each message gets the next sequence number of its
    /// conversation; a message whose (sender, client id, conversation) was stored before is returned as it was.
    public func commit(_ batch: [OutgoingMessage], known: [String: ConversationState], now: Int64 = epochMilliseconds())
        async throws(StoreError) -> (outcomes: [CommitOutcome], states: [String: ConversationState]) {
        do {
            return try await database.pool.write { db in
                var states = known
                var outcomes: [CommitOutcome] = []
                outcomes.reserveCapacity(batch.count)
                for message in batch {
                    switch message.target {
                    case .conversation(let customer):
                        guard let state = try Self.conversation(customer, in: db, states: &states, create: message.senderRole == .customer) else {
                            outcomes.append(.rejected(.unknownConversation, "no customer named \(customer)"))
                            continue
                        }
                        // Insert first and look for the earlier copy only when the insert meets it: resends are rare,
                        // and a lookup before every insert was a query per message.
                        if let stored = try Self.insert(message, customer: customer, states: &states, broadcast: false, now: now, in: db) {
                            outcomes.append(.stored([stored], duplicate: false))
                        } else if let existing = try Self.existing(message, conversationId: state.id, customer: customer, in: db) {
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
                            guard try Self.conversation(customer, in: db, states: &states, create: true) != nil else { continue }
                            if let message = try Self.insert(message, customer: customer, states: &states, broadcast: true, now: now, in: db) {
                                stored.append(message)
                            }
                        }
                        outcomes.append(.stored(stored, duplicate: false))
                    }
                }
                for (name, state) in states where known[name] != state {
                    try db.cachedStatement(sql: "UPDATE conversations SET last_seq = ?, customer_messages = ? WHERE id = ?")
                        .execute(arguments: [state.lastSeq, state.customerMessages, state.id])
                }
                return (outcomes, states)
            }
        } catch {
            throw StoreError.wrap(error)
        }
    }

    private static func conversation(_ customer: String, in db: Database, states: inout [String: ConversationState],
                                     create: Bool) throws -> ConversationState? {
        if let state = states[customer] { return state }
        if let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT id, last_seq, customer_messages FROM conversations WHERE customer = ?"),
                                      arguments: [customer]) {
            let state = ConversationState(id: row[0], lastSeq: row[1], customerMessages: row[2])
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
        let state = ConversationState(id: db.lastInsertedRowID, lastSeq: 0, customerMessages: 0)
        states[customer] = state
        return state
    }

    private static func existing(_ message: OutgoingMessage, conversationId: Int64, customer: String, in db: Database) throws -> ChatMessage? {
        try Row.fetchOne(db.cachedStatement(sql: """
            SELECT id, seq, sender, sender_role, client_id, body, sent_at, broadcast FROM messages
            WHERE sender = ? AND client_id = ? AND conversation_id = ?
            """), arguments: [message.sender, message.clientId, conversationId]).flatMap { ChatMessage(row: $0, conversation: customer) }
            .map { try withAttachments([$0], in: db)[0] }
    }

    private static func existingBroadcast(_ message: OutgoingMessage, in db: Database) throws -> [ChatMessage] {
        try Row.fetchAll(db.cachedStatement(sql: """
            SELECT m.id, m.seq, m.sender, m.sender_role, m.client_id, m.body, m.sent_at, m.broadcast, c.customer
            FROM messages m JOIN conversations c ON c.id = m.conversation_id
            WHERE m.sender = ? AND m.client_id = ? AND m.broadcast = 1 ORDER BY m.id
            """), arguments: [message.sender, message.clientId]).compactMap { ChatMessage(row: $0, conversation: $0["customer"]) }
    }

    /// Stores `message` in `customer`'s conversation; nil (and nothing changed) when that sender already sent that
    /// client id there.
    private static func insert(_ message: OutgoingMessage, customer: String, states: inout [String: ConversationState],
                               broadcast: Bool, now: Int64, in db: Database) throws -> ChatMessage? {
        guard var state = states[customer] else { throw StoreError.notFound("conversation \(customer)") }
        state.lastSeq += 1
        if message.senderRole == .customer { state.customerMessages += 1 }
        try db.cachedStatement(sql: """
            INSERT INTO messages (conversation_id, seq, sender, sender_role, client_id, body, sent_at, broadcast, customer_ordinal)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (sender, client_id, conversation_id) DO NOTHING
            """).execute(arguments: [state.id, state.lastSeq, message.sender, message.senderRole.rawValue, message.clientId,
                                     message.text, now, broadcast, state.customerMessages])
        guard db.changesCount > 0 else { return nil }
        states[customer] = state
        let id = db.lastInsertedRowID
        for (position, attachment) in message.attachments.enumerated() {
            try db.cachedStatement(sql: """
                INSERT INTO attachments (message_id, position, blob_hash, name, uploader, name_mismatch) VALUES (?, ?, ?, ?, ?, ?)
                """).execute(arguments: [id, position, attachment.sha256, attachment.name, message.sender, attachment.nameMismatch])
            try db.cachedStatement(sql: "UPDATE blobs SET last_referenced_at = ? WHERE hash = ?").execute(arguments: [now, attachment.sha256])
        }
        return ChatMessage(id: id, conversation: customer, seq: state.lastSeq, sender: message.sender,
                           senderRole: message.senderRole, clientId: message.clientId, text: message.text, sentAt: now,
                           broadcast: broadcast, attachments: message.attachments.isEmpty ? nil : message.attachments)
    }

    private static func allCustomers(in db: Database) throws -> [String] {
        try String.fetchAll(db, sql: """
            SELECT username FROM sessions WHERE role = 'customer'
            UNION SELECT customer FROM conversations ORDER BY 1
            """)
    }

    /// Every customer: those with a token (even revoked) and those with a conversation.
    public func customers() async throws(StoreError) -> [String] {
        do { return try await database.pool.read { db in try Self.allCustomers(in: db) } } catch { throw .wrap(error) }
    }

    /// A page of a conversation. `before`: the `limit` messages just below it; `after`: just above it; neither:
    /// the newest page. Always ascending by seq. `hasMore` says whether more exist further in that direction.
    public func history(customer: String, before: Int? = nil, after: Int? = nil, limit: Int) async throws(StoreError)
        -> (messages: [ChatMessage], hasMore: Bool) {
        let limit = max(1, limit)
        do {
            return try await database.pool.read { db in
                let columns = "m.id, m.seq, m.sender, m.sender_role, m.client_id, m.body, m.sent_at, m.broadcast"
                let from = "FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE c.customer = ?"
                var rows: [Row]
                if let after {
                    rows = try Row.fetchAll(db.cachedStatement(sql: "SELECT \(columns) \(from) AND m.seq > ? ORDER BY m.seq ASC LIMIT ?"),
                                            arguments: [customer, after, limit + 1])
                } else {
                    rows = try Row.fetchAll(db.cachedStatement(sql: "SELECT \(columns) \(from) AND m.seq < ? ORDER BY m.seq DESC LIMIT ?"),
                                            arguments: [customer, before ?? Int.max, limit + 1])
                }
                let hasMore = rows.count > limit
                rows = Array(rows.prefix(limit))
                if after == nil { rows.reverse() }
                return (try Self.withAttachments(rows.compactMap { ChatMessage(row: $0, conversation: customer) }, in: db), hasMore)
            }
        } catch {
            throw .wrap(error)
        }
    }

    /// State of every conversation for the roster, with its last message.
    public func conversationSummaries() async throws(StoreError) -> [ConversationSummary] {
        do {
            return try await database.pool.read { db in
                try Row.fetchAll(db, sql: """
                    SELECT c.customer, c.id, c.last_seq, c.customer_messages, m.sender, m.body, m.sent_at
                    FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.id AND m.seq = c.last_seq
                    """).map { row in
                        let preview: MessagePreview? = (row["sender"] as String?).map {
                            MessagePreview(sender: $0, text: ConversationSummary.previewText(row["body"] ?? ""),
                                           sentAt: row["sent_at"] ?? 0, seq: row["last_seq"])
                        }
                        return ConversationSummary(customer: row["customer"],
                                                   state: ConversationState(id: row["id"], lastSeq: row["last_seq"],
                                                                            customerMessages: row["customer_messages"]),
                                                   lastMessage: preview)
                    }
            }
        } catch {
            throw .wrap(error)
        }
    }

    /// Every stored read marker with the number of customer messages it covers.
    public func readMarkers() async throws(StoreError) -> [StoredReadMarker] {
        do {
            return try await database.pool.read { db in
                try Row.fetchAll(db, sql: """
                    SELECT r.username, c.customer, r.seq,
                        COALESCE((SELECT customer_ordinal FROM messages m WHERE m.conversation_id = r.conversation_id
                                  AND m.seq <= r.seq ORDER BY m.seq DESC LIMIT 1), 0) AS covered
                    FROM read_markers r JOIN conversations c ON c.id = r.conversation_id
                    """).map { StoredReadMarker(user: $0["username"], customer: $0["customer"], seq: $0["seq"], customerMessagesRead: $0["covered"]) }
            }
        } catch {
            throw .wrap(error)
        }
    }

    /// Moves `user`'s read marker in `customer`'s conversation forward to `seq` (never back). Returns the marker
    /// now stored, or nil when the conversation does not exist.
    public func markRead(user: String, customer: String, seq: Int) async throws(StoreError) -> StoredReadMarker? {
        do {
            return try await database.pool.write { db in
                guard let row = try Row.fetchOne(db, sql: "SELECT id, last_seq FROM conversations WHERE customer = ?",
                                                 arguments: [customer]) else { return nil }
                let conversationId: Int64 = row["id"]
                let target = min(seq, row["last_seq"] as Int)
                try db.execute(sql: """
                    INSERT INTO read_markers (username, conversation_id, seq, updated_at) VALUES (?, ?, ?, ?)
                    ON CONFLICT (username, conversation_id) DO UPDATE SET seq = max(seq, excluded.seq), updated_at = excluded.updated_at
                    """, arguments: [user, conversationId, target, epochMilliseconds()])
                let stored = try Int.fetchOne(db, sql: "SELECT seq FROM read_markers WHERE username = ? AND conversation_id = ?",
                                              arguments: [user, conversationId]) ?? target
                let covered = try Int.fetchOne(db, sql: """
                    SELECT customer_ordinal FROM messages WHERE conversation_id = ? AND seq <= ? ORDER BY seq DESC LIMIT 1
                    """, arguments: [conversationId, stored]) ?? 0
                return StoredReadMarker(user: user, customer: customer, seq: stored, customerMessagesRead: covered)
            }
        } catch {
            throw .wrap(error)
        }
    }

    /// Number of stored messages (all conversations).
    public func messageCount() async throws(StoreError) -> Int {
        do { return try await database.pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM messages") ?? 0 } } catch { throw .wrap(error) }
    }
}

public struct ConversationSummary: Sendable, Equatable {
    public var customer: String
    public var state: ConversationState
    public var lastMessage: MessagePreview?

    /// The roster shows at most 120 characters of the last message.
    public static func previewText(_ text: String) -> String {
        text.count <= 120 ? text : String(text.prefix(119)) + "…"
    }
}

public struct StoredReadMarker: Sendable, Equatable {
    public var user: String
    public var customer: String
    public var seq: Int
    /// Customer messages with seq <= `seq`: unread = conversation's customer messages - this.
    public var customerMessagesRead: Int
}

extension ChatMessage {
    init?(row: Row, conversation: String) {
        guard let role = Role(rawValue: row["sender_role"]) else { return nil }
        self.init(id: row["id"], conversation: conversation, seq: row["seq"], sender: row["sender"], senderRole: role,
                  clientId: row["client_id"], text: row["body"], sentAt: row["sent_at"], broadcast: row["broadcast"])
    }
}
