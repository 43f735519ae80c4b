import ChatProtocol
import ChatStore
import Logging
import PostgresNIO

/// One group commit on PostgreSQL, inside its transaction, in a fixed number of statements whatever its size: on
/// one machine the cost of a batch is its round trips, not its rows (one INSERT per message was several times
/// slower; the figures are in BENCHMARKS.md).
///
/// Sequence numbers: every conversation the batch writes to is locked (`SELECT ... FOR UPDATE`) before its counters
/// are read, all at once and in id order, so writers on several nodes wait for each other instead of deadlocking,
/// and each sees the counters the previous one committed: numbers stay unique and gap-free. The same locks make the
/// resend check exact: every writer to a conversation holds its row, so a client id found absent stays absent until
/// this transaction ends.
/// Delivery: the batch's message ids are recorded under a number taken in commit order, and one NOTIFY says so.
struct PostgresBatch {
    let connection: PostgresConnection
    let logger: Logger
    let now: Int64
    /// The node committing, so that it can deliver its own batches with what it already has.
    let node: String
    /// Whether to look for earlier copies of the batch's messages (resends) before inserting. Without the look, a
    /// resend makes the insert skip its row, and the batch fails with `resendMet` so that it runs again with it: a
    /// round trip saved on every batch, one more transaction on the rare batch that holds a resend.
    let checkResends: Bool
    private var conversations: [String: (id: Int64, state: ConversationState)] = [:]

    init(connection: PostgresConnection, logger: Logger, now: Int64, node: String, checkResends: Bool) {
        self.connection = connection
        self.logger = logger
        self.now = now
        self.node = node
        self.checkResends = checkResends
    }

    /// A batch that met a resend without looking for them: retried (the serialization-failure code makes the
    /// transaction runner do it) with `checkResends`.
    static let resendMet = PostgresFailure(operation: "storing messages", sqlState: "40001",
                                           message: "a message of the batch was stored before; storing again with a resend check")

    static let channel = "chat_batches"

    /// The customers whose conversations the batch found (and locked).
    var lockedConversations: [String] { Array(conversations.keys) }

    /// A message row the batch will insert.
    private struct Row {
        var message: Int
        var customer: String
        var conversationId: Int64
        var seq: Int64
        var customerSeq: Int64?
        var ordinal: Int64
        var broadcast: Bool
    }

    /// What becomes of each message of the batch once its rows are inserted.
    private enum Plan {
        case done(CommitOutcome)
        /// Rows (indices into `rows`) stored now, or stored earlier in this batch under the same client id.
        case rows([Int], duplicate: Bool)
    }

    /// A message's resend identity in one conversation, as the unique index has it.
    private struct Key: Hashable {
        var sender: String
        var clientId: String
        var conversationId: Int64
    }

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
        let earlier = checkResends ? try await storedBefore(batch) : [:]

        var rows: [Row] = []
        var plans: [Plan] = []
        plans.reserveCapacity(batch.count)
        var planned: [Key: Int] = [:]
        var plannedBroadcasts: [BroadcastKey: [Int]] = [:]
        for (index, message) in batch.enumerated() {
            switch message.target {
            case .conversation(let customer):
                guard let conversation = conversations[customer] else {
                    plans.append(.done(.rejected(.unknownConversation, "no customer named \(customer)")))
                    continue
                }
                let key = Key(sender: message.sender, clientId: message.clientId, conversationId: conversation.id)
                if let stored = earlier[key] {
                    plans.append(.done(.stored([stored], duplicate: true)))
                } else if let row = planned[key] {
                    plans.append(.rows([row], duplicate: true))
                } else {
                    planned[key] = rows.count
                    rows.append(next(index, message, customer: customer, broadcast: false))
                    plans.append(.rows([rows.count - 1], duplicate: false))
                }
            case .allCustomers:
                let key = BroadcastKey(sender: message.sender, clientId: message.clientId)
                if let previous = plannedBroadcasts[key] {
                    plans.append(.rows(previous, duplicate: true))
                    continue
                }
                let previous = try await sentBefore(message)
                let broadcasts = previous.filter(\.broadcast)
                if !broadcasts.isEmpty {
                    plans.append(.done(.stored(broadcasts, duplicate: true)))
                    continue
                }
                // A direct message under the same client id stands in its conversation; the broadcast skips it.
                let taken = Set(previous.map(\.conversation))
                var indices: [Int] = []
                for customer in everyone ?? [] where !taken.contains(customer) {
                    guard let conversation = conversations[customer] else { continue }
                    let key = Key(sender: message.sender, clientId: message.clientId, conversationId: conversation.id)
                    guard earlier[key] == nil, planned[key] == nil else { continue }
                    planned[key] = rows.count
                    indices.append(rows.count)
                    rows.append(next(index, message, customer: customer, broadcast: true))
                }
                plannedBroadcasts[key] = indices
                plans.append(.rows(indices, duplicate: false))
            }
        }

        let stored = try await insert(rows, of: batch)
        if !stored.isEmpty { try await recordForDelivery(stored.map(\.id)) }
        return plans.map { plan in
            switch plan {
            case .done(let outcome): outcome
            case .rows(let indices, let duplicate): .stored(indices.map { stored[$0] }, duplicate: duplicate)
            }
        }
    }

    private struct BroadcastKey: Hashable {
        var sender: String
        var clientId: String
    }

    /// The next row of `customer`'s conversation, its counters advanced.
    private mutating func next(_ index: Int, _ message: OutgoingMessage, customer: String, broadcast: Bool) -> Row {
        guard var conversation = conversations[customer] else { preconditionFailure("planned a row in a conversation not locked") }
        let (seq, customerSeq) = conversation.state.advance(for: message.kind, from: message.senderRole)
        conversations[customer] = conversation
        return Row(message: index, customer: customer, conversationId: conversation.id, seq: Int64(seq),
                   customerSeq: customerSeq.map(Int64.init), ordinal: Int64(conversation.state.customerMessages), broadcast: broadcast)
    }

    private mutating func lock(_ names: Set<String>) async throws {
        guard !names.isEmpty else { return }
        for row in try await connection.rows("""
            SELECT id, customer, last_seq, customer_messages, customer_last_seq FROM conversations WHERE customer = ANY(\(Array(names)))
            ORDER BY id FOR UPDATE
            """, logger: logger) {
            conversations[try row.get("customer")] = (try row.get("id"), ConversationState(lastSeq: try row.int("last_seq"),
                                                                                          customerMessages: try row.int("customer_messages"),
                                                                                          customerLastSeq: try row.int("customer_last_seq")))
        }
    }

    /// Messages of the batch stored by earlier commits (resends), in one query.
    private func storedBefore(_ batch: [OutgoingMessage]) async throws -> [Key: ChatMessage] {
        var senders: [String] = [], clientIds: [String] = [], conversationIds: [Int64] = []
        var names: [Int64: String] = [:]
        for message in batch {
            guard case .conversation(let customer) = message.target, let conversation = conversations[customer] else { continue }
            senders.append(message.sender)
            clientIds.append(message.clientId)
            conversationIds.append(conversation.id)
            names[conversation.id] = customer
        }
        guard !senders.isEmpty else { return [:] }
        let rows = try await connection.rows("""
            SELECT \(unescaped: PostgresMessageStore.columns), m.conversation_id
            FROM unnest(\(senders)::text[], \(clientIds)::text[], \(conversationIds)::bigint[]) AS k(sender, client_id, conversation_id)
            JOIN messages m ON m.sender = k.sender AND m.client_id = k.client_id AND m.conversation_id = k.conversation_id
            """, logger: logger)
        guard !rows.isEmpty else { return [:] }
        var found: [ChatMessage] = []
        var keys: [Int64: Key] = [:]
        for row in rows {
            let conversationId: Int64 = try row.get("conversation_id")
            guard let message = try ChatMessage(postgres: row, conversation: names[conversationId] ?? "") else { continue }
            found.append(message)
            keys[message.id] = Key(sender: message.sender, clientId: message.clientId, conversationId: conversationId)
        }
        var result: [Key: ChatMessage] = [:]
        for message in try await PostgresAttachments.fill(found, on: connection, logger: logger) {
            if let key = keys[message.id] { result[key] = message }
        }
        return result
    }

    /// Inserts the rows and advances the counters in one statement, then the attachments; the stored messages, in
    /// the rows' order.
    private func insert(_ rows: [Row], of batch: [OutgoingMessage]) async throws -> [ChatMessage] {
        guard !rows.isEmpty else { return [] }
        var ids: [Int64] = [], lastSeqs: [Int64] = [], customerMessages: [Int64] = [], customerLastSeqs: [Int64] = []
        let written = Set(rows.map(\.customer))
        for (name, conversation) in conversations where written.contains(name) {
            ids.append(conversation.id)
            lastSeqs.append(Int64(conversation.state.lastSeq))
            customerMessages.append(Int64(conversation.state.customerMessages))
            customerLastSeqs.append(Int64(conversation.state.customerLastSeq))
        }
        let messages = rows.map { batch[$0.message] }
        let events = messages.map { message -> ConversationEvent? in if case .event(let event) = message.kind { event } else { nil } }
        // Arrays carry no NULLs here: 0, "" and Int64.min stand for them (no row has seq 0, an empty name or that time).
        let inserted = try await connection.rows("""
            WITH counters AS (
                UPDATE conversations c
                SET last_seq = u.last_seq, customer_messages = u.customer_messages, customer_last_seq = u.customer_last_seq
                FROM unnest(\(ids)::bigint[], \(lastSeqs)::bigint[], \(customerMessages)::bigint[], \(customerLastSeqs)::bigint[])
                    AS u(id, last_seq, customer_messages, customer_last_seq)
                WHERE c.id = u.id
            )
            INSERT INTO messages (conversation_id, seq, sender, sender_role, client_id, body, sent_at, broadcast, customer_ordinal,
                                  kind, customer_seq, event_status, event_until, event_assignee)
            SELECT r.conversation_id, r.seq, r.sender, r.sender_role, r.client_id, r.body, \(now), r.broadcast, r.ordinal,
                   r.kind, NULLIF(r.customer_seq, 0), NULLIF(r.event_status, ''), NULLIF(r.event_until, \(Int64.min)),
                   NULLIF(r.event_assignee, '')
            FROM unnest(\(rows.map(\.conversationId))::bigint[], \(rows.map(\.seq))::bigint[], \(messages.map(\.sender))::text[],
                        \(messages.map(\.senderRole.rawValue))::text[], \(messages.map(\.clientId))::text[], \(messages.map(\.text))::text[],
                        \(rows.map(\.broadcast))::boolean[], \(rows.map(\.ordinal))::bigint[], \(messages.map(\.kind.column))::text[],
                        \(rows.map { $0.customerSeq ?? 0 })::bigint[], \(events.map { $0?.status?.rawValue ?? "" })::text[],
                        \(events.map { $0?.until ?? Int64.min })::bigint[], \(events.map { $0?.assignee ?? "" })::text[])
                AS r(conversation_id, seq, sender, sender_role, client_id, body, broadcast, ordinal, kind, customer_seq,
                     event_status, event_until, event_assignee)
            ON CONFLICT (sender, client_id, conversation_id) DO NOTHING
            RETURNING id, conversation_id, seq
            """, logger: logger)
        if inserted.count < rows.count, !checkResends { throw Self.resendMet }
        // RETURNING promises no order: rows are matched by their (conversation, seq), which is unique.
        var idOf: [SeqKey: Int64] = [:]
        for row in inserted {
            idOf[SeqKey(conversationId: try row.get("conversation_id"), seq: try row.get("seq"))] = try row.get("id")
        }
        var stored: [ChatMessage] = []
        stored.reserveCapacity(rows.count)
        for (index, (row, message)) in zip(rows, messages).enumerated() {
            guard let id = idOf[SeqKey(conversationId: row.conversationId, seq: row.seq)] else {
                throw StoreError.notFound("the row of message \(message.clientId) from \(message.sender) in \(row.customer)")
            }
            stored.append(ChatMessage(id: id, conversation: row.customer, seq: Int(row.seq), sender: message.sender,
                                      senderRole: message.senderRole, clientId: message.clientId, text: message.text, sentAt: now,
                                      broadcast: row.broadcast, attachments: message.attachments.isEmpty ? nil : message.attachments,
                                      isPrivate: message.kind == .message ? nil : true, event: events[index],
                                      customerSeq: row.customerSeq.map(Int.init)))
            if let event = events[index] { try await record(event, conversationId: row.conversationId, customerMessages: row.ordinal) }
        }
        try await insertAttachments(of: stored)
        return stored
    }

    /// A workflow event's change to its conversation (rare: a statement each, in the batch's order).
    private func record(_ event: ConversationEvent, conversationId: Int64, customerMessages: Int64) async throws {
        var workflow = ConversationWorkflow()
        workflow.apply(event, customerMessages: Int(customerMessages))
        switch event.kind {
        case .status:
            try await connection.run("""
                UPDATE conversations SET status = \(workflow.status.rawValue), snoozed_until = \(workflow.snoozedUntil),
                    status_customer_messages = \(customerMessages)
                WHERE id = \(conversationId)
                """, logger: logger)
        case .assignment:
            try await connection.run("UPDATE conversations SET assignee = \(event.assignee) WHERE id = \(conversationId)", logger: logger)
        }
    }

    private struct SeqKey: Hashable {
        var conversationId: Int64
        var seq: Int64
    }

    private func insertAttachments(of messages: [ChatMessage]) async throws {
        var ids: [Int64] = [], positions: [Int32] = [], hashes: [String] = [], names: [String] = [], uploaders: [String] = []
        var mismatches: [Bool] = []
        for message in messages {
            for (position, attachment) in (message.attachments ?? []).enumerated() {
                ids.append(message.id)
                positions.append(Int32(position))
                hashes.append(attachment.sha256)
                names.append(attachment.name)
                uploaders.append(message.sender)
                mismatches.append(attachment.nameMismatch)
            }
        }
        guard !ids.isEmpty else { return }
        try await connection.run("""
            WITH referenced AS (UPDATE blobs SET last_referenced_at = \(now) WHERE hash = ANY(\(hashes)::text[]))
            INSERT INTO attachments (message_id, position, blob_hash, name, uploader, name_mismatch)
            SELECT * FROM unnest(\(ids)::bigint[], \(positions)::integer[], \(hashes)::text[], \(names)::text[], \(uploaders)::text[],
                                 \(mismatches)::boolean[])
            """, logger: logger)
    }

    /// Numbers the batch in commit order and announces it, in one statement: the counter row stays locked until
    /// this transaction ends, so no later number can become visible before this one. Taken last, so that batches
    /// of different conversations on several nodes wait for each other only this long. The NOTIFY is sent only if
    /// the transaction commits.
    private func recordForDelivery(_ ids: [Int64]) async throws {
        try await connection.run("""
            WITH counter AS (UPDATE delivery_counter SET batch_no = batch_no + 1 RETURNING batch_no),
            batch AS (
                INSERT INTO delivery_batches (batch_no, node, message_ids, committed_at)
                SELECT batch_no, \(node), \(ids), \(unescaped: PostgresFanOut.clock) FROM counter
                RETURNING batch_no
            )
            SELECT pg_notify(\(Self.channel), batch_no::text) FROM batch
            """, logger: logger)
    }

    /// Every message `message`'s sender stored under its client id, in any conversation: a broadcast's resend check.
    private func sentBefore(_ message: OutgoingMessage) async throws -> [ChatMessage] {
        let messages = try await connection.rows("""
            SELECT \(unescaped: PostgresMessageStore.columns), c.customer FROM messages m JOIN conversations c ON c.id = m.conversation_id
            WHERE m.sender = \(message.sender) AND m.client_id = \(message.clientId) ORDER BY m.id
            """, logger: logger).compactMap { try ChatMessage(postgres: $0, conversation: try $0.get("customer")) }
        return try await PostgresAttachments.fill(messages, on: connection, logger: logger)
    }
}
