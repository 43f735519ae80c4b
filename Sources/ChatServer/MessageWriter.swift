import ChatProtocol
import ChatStore
import Logging
import Metrics
import NIOCore

/// Group commit: messages from every connection queue here and are stored in batches, one transaction (one fsync)
/// per batch. After each commit the senders get their acks and the delivery bus gets the batch, in commit order.
/// Whatever arrives while a batch is being written forms the next batch, so batches grow with load by themselves.
///
/// Acks and delivery of one batch overlap the commit of the next: each batch's delivery waits for the one before
/// (so order holds) but not the database, which would otherwise sit idle while a batch is encoded and fanned out.
actor MessageWriter {
    struct Pending: Sendable {
        var message: OutgoingMessage
        /// Where the ack goes; nil for messages the server makes itself.
        var origin: Connection?
        var receivedAt: ContinuousClock.Instant
        /// A workflow request's id, echoed in its answer.
        var requestId: String? = nil
    }

    enum SubmitError: Error {
        case overloaded
        case shuttingDown
    }

    private let store: any MessageStore
    private let bus: any DeliveryBus
    private let metrics: ChatMetrics
    private let logger: Logger
    private let maxPending: Int
    private let maxBatch = 4096

    private var queue: [Pending] = []
    private var draining = false
    private var closed = false
    private var idleWaiters: [CheckedContinuation<Void, Never>] = []
    /// Acks and delivery of the last committed batch.
    private var delivering: Task<Void, Never>?

    init(store: any MessageStore, bus: any DeliveryBus, metrics: ChatMetrics, logger: Logger, maxPending: Int) {
        self.store = store
        self.bus = bus
        self.metrics = metrics
        self.logger = logger
        self.maxPending = maxPending
    }

    /// Queues a message. Its ack (or error) is sent to `pending.origin` once the batch has committed.
    func submit(_ pending: Pending) throws(SubmitError) {
        guard !closed else { throw .shuttingDown }
        guard queue.count < maxPending else { throw .overloaded }
        queue.append(pending)
        if !draining {
            draining = true
            Task { await self.drain() }
        }
    }

    /// Refuses new messages and returns once everything queued has been committed and acknowledged.
    func close() async {
        closed = true
        if !draining && queue.isEmpty { return }
        await withCheckedContinuation { idleWaiters.append($0) }
    }

    private func drain() async {
        // Messages that arrive while the last deliveries finish are still this drain's to commit: `submit` starts
        // no other drain until `draining` is false.
        repeat {
            while !queue.isEmpty {
                let batch: [Pending]
                if queue.count <= maxBatch {
                    batch = queue
                    queue.removeAll(keepingCapacity: true)
                } else {
                    batch = Array(queue.prefix(maxBatch))
                    queue.removeFirst(maxBatch)
                }
                await commit(batch)
            }
            await delivering?.value
        } while !queue.isEmpty
        draining = false
        let waiters = idleWaiters
        idleWaiters.removeAll()
        for waiter in waiters { waiter.resume() }
    }

    private func commit(_ batch: [Pending]) async {
        let outcomes: [CommitOutcome]
        let started = ContinuousClock.now
        do {
            outcomes = try await store.commit(batch.map(\.message))
        } catch {
            // Nothing of the batch is stored: say so to every sender, who may resend with the same ids. The cause is
            // the operator's (the log), not the client's: it may name hosts, tables or SQL.
            logger.error("storing a batch of messages failed", metadata: ["error": "\(error)", "count": "\(batch.count)"])
            let failed = CommitOutcome.rejected(.storeFailed, "the message could not be stored: the server's database failed; resend it later with the same clientId")
            afterPrevious { Self.replies(to: batch, outcomes: Array(repeating: failed, count: batch.count)).send() }
            return
        }
        metrics.commitBatchSize.record(batch.count)
        metrics.commitDuration.recordInterval(since: started, now: .now)
        let (bus, metrics) = (bus, metrics)
        afterPrevious { await Self.deliver(batch, outcomes: outcomes, bus: bus, metrics: metrics) }
    }

    /// Runs `work` once the previous batch's acks and deliveries are out, without holding up the next commit.
    private func afterPrevious(_ work: @escaping @Sendable () async -> Void) {
        let previous = delivering
        delivering = Task {
            await previous?.value
            await work()
        }
    }

    /// Acks to the senders, then the stored messages to the bus, encoded once each.
    private static func deliver(_ batch: [Pending], outcomes: [CommitOutcome], bus: any DeliveryBus, metrics: ChatMetrics) async {
        var deliveries: [Delivery] = []
        deliveries.reserveCapacity(batch.count)
        var stored = 0
        replies(to: batch, outcomes: outcomes).send()
        for (pending, outcome) in zip(batch, outcomes) {
            guard case .stored(let messages, duplicate: false) = outcome else { continue }
            stored += messages.count
            for message in messages {
                // A workflow change reaches its requester too: the answer carries no text for the timeline.
                let origin = message.event == nil ? pending.origin?.id : nil
                if let delivery = Delivery(message, origin: origin) { deliveries.append(delivery) }
            }
        }
        metrics.messagesStored.increment(by: stored)
        await bus.publish(.committed(deliveries))
        let now = ContinuousClock.now
        for pending in batch { metrics.deliveryLatency.recordInterval(since: pending.receivedAt, now: now) }
    }

    /// The senders' acks and errors for a batch, gathered to leave with one send per connection.
    private static func replies(to batch: [Pending], outcomes: [CommitOutcome]) -> OutboundBatch {
        var replies = OutboundBatch()
        for (pending, outcome) in zip(batch, outcomes) {
            if let origin = pending.origin, let reply = reply(to: pending, outcome: outcome) { replies.add(reply, to: origin) }
        }
        return replies
    }

    /// The sender's ack or error for one message of a batch.
    private static func reply(to pending: Pending, outcome: CommitOutcome) -> ByteBuffer? {
        let frame: ServerFrame
        switch outcome {
        case .rejected(let code, let text):
            frame = .error(ErrorFrame(code: code, message: text, ref: pending.requestId ?? pending.message.clientId))
        case .stored(let messages, let duplicate):
            switch pending.message.target {
            case .conversation:
                guard let message = messages.first else { return nil }
                switch pending.message.kind {
                case .event(let event):
                    frame = .conversationUpdated(ConversationUpdated(requestId: pending.requestId, conversation: message.conversation,
                                                                     seq: message.seq, event: message.event ?? event, duplicate: duplicate))
                case .message, .note:
                    // A customer's own message is acknowledged in their numbering.
                    let seq = pending.origin?.role == .customer ? (message.forCustomer ?? message).seq : message.seq
                    frame = .ack(Ack(clientId: message.clientId, id: message.id, conversation: message.conversation,
                                     seq: seq, sentAt: message.sentAt, duplicate: duplicate))
                }
            case .allCustomers:
                frame = .broadcastAck(BroadcastAck(clientId: pending.message.clientId, conversations: messages.count,
                                                   sentAt: messages.first?.sentAt ?? epochMilliseconds(), duplicate: duplicate))
            }
        }
        return try? encodeFrame(frame)
    }
}

extension Metrics.Timer {
    func recordInterval(since start: ContinuousClock.Instant, now: ContinuousClock.Instant) {
        recordNanoseconds((now - start).inNanoseconds)
    }
}
