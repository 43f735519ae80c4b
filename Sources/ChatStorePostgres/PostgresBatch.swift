import ChatProtocol
import ChatStore
import Logging
import PostgresNIO

/// One group commit on PostgreSQL, inside its transaction.
///
/// Sequence numbers: every conversation the batch writes to is locked (`SELECT ... FOR UPDATE`) before its counters
/// are read, all at once and in id order, so writers on several nodes wait for each other instead of deadlocking,
/// and each sees the counters the previous one committed: numbers stay unique and gap-free.
/// Delivery: the batch's message ids are recorded under a number taken in commit order, and one NOTIFY says so.
struct PostgresBatch {
    let connection: PostgresConnection
    let logger: Logger
    let now: Int64
    /// The node committing, so that it can deliver its own batches with what it already has.
    let node: String
    private var conversations: [String: (id: Int64, state: ConversationState)] = [:]
    private var changed: Set<String> = []
    private var storedIds: [Int64] = []

    init(connection: PostgresConnection, logger: Logger, now: Int64, node: String) {
        self.connection = connection
        self.logger = logger
        self.now = now
        self.node = node
    }

    static let channel = "chat_batches"

    mutating func commit(_ batch: [OutgoingMessage]) async throws -> [CommitOutcome] {
        var names = Set<String>()
        var everyone: [String]?
        for message in batch {
            switch message.target {
            case .conversation(let customer): names.insert(customer)
            case .allCustomers where everyone == nil:
                everyone = try await PostgresMessageStore.allCustomers(on: connection, logger: logger)
                names.formUnion(everyone ?? [])
            case .allCustomers: break
            }
        }
        try await lock(names)
        var outcomes: [CommitOutcome] = []
        outcomes.reserveCapacity(batch.count)
        for message in batch {
            switch message.target {
            case .conversation(let customer):
                guard open(customer) else {
                    outcomes.append(.rejected(.unknownConversation, "no customer named \(customer)"))
                    continue
                }
                if let stored = try await insert(message, customer: customer, broadcast: false) {
                    outcomes.append(.stored([stored], duplicate: false))
                } else if let existing = try await existing(message, customer: customer) {
                    outcomes.append(.stored([existing], duplicate: true))
                } else {
                    throw StoreError.notFound("message \(message.clientId) from \(message.sender) in \(customer)")
                }
            case .allCustomers:
                let previous = try await existingBroadcast(message)
                if !previous.isEmpty {
                    outcomes.append(.stored(previous, duplicate: true))
                    continue
                }
                var stored: [ChatMessage] = []
                for customer in everyone ?? [] where open(customer) {
                    if let message = try await insert(message, customer: customer, broadcast: true) { stored.append(message) }
                }
                outcomes.append(.stored(stored, duplicate: false))
            }
        }
        for name in changed.sorted() {
            guard let conversation = conversations[name] else { continue }
            try await connection.run("""
                UPDATE conversations SET last_seq = \(Int64(conversation.state.lastSeq)),
                    customer_messages = \(Int64(conversation.state.customerMessages)) WHERE id = \(conversation.id)
                """, logger: logger)
        }
        if !storedIds.isEmpty { try await recordForDelivery() }
        return outcomes
    }

    /// Numbers the batch in commit order: the advisory lock is held until this transaction ends, so no later
    /// number can become visible before this one.
    private func recordForDelivery() async throws {
        try await connection.run("SELECT pg_advisory_xact_lock(\(PostgresDatabase.batchLock))", logger: logger)
        let next = try await connection.rows("SELECT COALESCE(max(batch_no), 0) + 1 AS next FROM delivery_batches", logger: logger)
            .first?.get("next", Int64.self) ?? 1
        try await connection.run("""
            INSERT INTO delivery_batches (batch_no, node, message_ids, committed_at) VALUES (\(next), \(node), \(storedIds), \(now))
            """, logger: logger)
        try await connection.run("SELECT pg_notify(\(Self.channel), \(String(next)))", logger: logger)
    }

    private mutating func lock(_ names: Set<String>) async throws {
        guard !names.isEmpty else { return }
        for row in try await connection.rows("""
            SELECT id, customer, last_seq, customer_messages FROM conversations WHERE customer = ANY(\(Array(names)))
            ORDER BY id FOR UPDATE
            """, logger: logger) {
            conversations[try row.get("customer")] = (try row.get("id"), ConversationState(lastSeq: try row.int("last_seq"),
                                                                                          customerMessages: try row.int("customer_messages")))
        }
    }

    /// Whether `customer`'s conversation exists (and is locked): the store created what this batch may open
    /// before the transaction began.
    private func open(_ customer: String) -> Bool {
        conversations[customer] != nil
    }

    /// Stores `message` in `customer`'s conversation; nil (and nothing changed) when that sender already sent that
    /// client id there.
    private mutating func insert(_ message: OutgoingMessage, customer: String, broadcast: Bool) async throws -> ChatMessage? {
        guard var conversation = conversations[customer] else { throw StoreError.notFound("conversation \(customer)") }
        conversation.state.lastSeq += 1
        if message.senderRole == .customer { conversation.state.customerMessages += 1 }
        let seq = Int64(conversation.state.lastSeq)
        let ordinal = Int64(conversation.state.customerMessages)
        let rows = try await connection.rows("""
            INSERT INTO messages (conversation_id, seq, sender, sender_role, client_id, body, sent_at, broadcast, customer_ordinal)
            VALUES (\(conversation.id), \(seq), \(message.sender), \(message.senderRole.rawValue), \(message.clientId),
                    \(message.text), \(now), \(broadcast), \(ordinal))
            ON CONFLICT (sender, client_id, conversation_id) DO NOTHING RETURNING id
            """, logger: logger)
        guard let id = try rows.first?.get("id", Int64.self) else { return nil }
        for (position, attachment) in message.attachments.enumerated() {
            try await connection.run("""
                INSERT INTO attachments (message_id, position, blob_hash, name, uploader, name_mismatch)
                VALUES (\(id), \(Int32(position)), \(attachment.sha256), \(attachment.name), \(message.sender), \(attachment.nameMismatch))
                """, logger: logger)
            try await connection.run("UPDATE blobs SET last_referenced_at = \(now) WHERE hash = \(attachment.sha256)", logger: logger)
        }
        conversations[customer] = conversation
        changed.insert(customer)
        storedIds.append(id)
        return ChatMessage(id: id, conversation: customer, seq: Int(seq), sender: message.sender, senderRole: message.senderRole,
                           clientId: message.clientId, text: message.text, sentAt: now, broadcast: broadcast,
                           attachments: message.attachments.isEmpty ? nil : message.attachments)
    }

    private func existing(_ message: OutgoingMessage, customer: String) async throws -> ChatMessage? {
        guard let conversation = conversations[customer] else { return nil }
        let rows = try await connection.rows("""
            SELECT \(unescaped: PostgresMessageStore.columns) FROM messages m
            WHERE m.sender = \(message.sender) AND m.client_id = \(message.clientId) AND m.conversation_id = \(conversation.id)
            """, logger: logger)
        let messages = try rows.compactMap { try ChatMessage(postgres: $0, conversation: customer) }
        return try await PostgresAttachments.fill(messages, on: connection, logger: logger).first
    }

    private func existingBroadcast(_ message: OutgoingMessage) async throws -> [ChatMessage] {
        try await connection.rows("""
            SELECT \(unescaped: PostgresMessageStore.columns), c.customer FROM messages m JOIN conversations c ON c.id = m.conversation_id
            WHERE m.sender = \(message.sender) AND m.client_id = \(message.clientId) AND m.broadcast ORDER BY m.id
            """, logger: logger).compactMap { try ChatMessage(postgres: $0, conversation: try $0.get("customer")) }
    }
}
