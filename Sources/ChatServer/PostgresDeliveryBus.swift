import ChatProtocol
import ChatStore
import ChatStorePostgres
import Foundation
import Logging
import NIOCore

/// The delivery bus of several nodes sharing one PostgreSQL database.
///
/// Messages: the store's commit records each batch under a number taken in commit order and sends one NOTIFY with
/// that number. Every node, this one included, delivers batches in that order: its own from what the writer
/// published (no read, and the sender's connection known), the others' by reading their rows. A node whose
/// listening connection dropped reconnects and catches up from the last number it delivered: no gap, no duplicate.
/// Typing, read receipts and presence are delivered here at once and queued for the other nodes: what gathers while
/// one NOTIFY is sent goes in the next one. They may be lost with a dying node or while the database is unreachable,
/// but never hold up a frame loop or messages. Revocations stay local: every node watches the tokens table itself.
/// Liveness: a heartbeat every second, on the database's clock; a node silent for `expiry` counts as gone, and its
/// users go offline, until it beats again. A node judges others only after its own heartbeats have got through for
/// `expiry`: after an outage every node's last heartbeat is old, and the others' new ones are not in yet.
actor PostgresDeliveryBus: DeliveryBus {
    nonisolated let node: String
    private let fanOut: PostgresFanOut
    private let messages: PostgresMessageStore
    private let logger: Logger
    private let expiry: Duration
    private var subscribers: [any DeliverySubscriber] = []
    /// The last batch delivered here; nil until this node has read where to start.
    private var delivered: Int64?
    /// What this node's writer published, by message id, until its batch comes round in commit order.
    private var local: [Int64: Delivery] = [:]
    /// This node's messages delivered from their rows because the writer's deliveries were late: theirs are
    /// dropped when they come.
    private var late: Set<Int64> = []
    /// Nodes reported gone, until they beat again.
    private var gone: Set<String> = []
    /// Users with connections on this node, as announced.
    private var here: [String: Role] = [:]
    /// Users whose presence change may not have been recorded or announced (the database was unreachable), and
    /// whether this node's presence rows may be wrong: set right once its heartbeat gets through again.
    private var unannounced: [String: Role] = [:]
    private var presenceUnsure = true
    /// Counts presence changes, so that rows rewritten from an older state are not taken as right.
    private var presenceChanges = 0
    /// When this node may judge others again: one expiry after its heartbeats got through again.
    private var judgeFrom: ContinuousClock.Instant?
    private var lastBeat: ContinuousClock.Instant?
    /// A catch-up is running: another request only asks it to look again. Two at once (a notification and the
    /// heartbeat's) could both deliver the same batch while each waited for its rows.
    private var catchingUp = false
    private var catchUpAgain = false
    /// Typing notices, receipts and presence changes for the other nodes, in order, until the next flush.
    private var outgoing: [BusEvent] = []
    private let eventsQueued: AsyncStream<Void>.Continuation
    private let eventsToSend: AsyncStream<Void>
    /// This node's heartbeat fails: events are dropped at once rather than sent late, or held behind a timeout.
    private var databaseDown = false
    /// Typing notices and receipts beyond this many waiting are dropped (presence changes are always kept).
    static let maxQueuedEvents = 10_000

    init(database: PostgresDatabase, logger: Logger, expiry: Duration = .seconds(5)) {
        node = database.node
        fanOut = PostgresFanOut(database: database)
        messages = PostgresMessageStore(database: database)
        self.logger = logger
        self.expiry = expiry
        (eventsToSend, eventsQueued) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    func subscribe(_ subscriber: any DeliverySubscriber) {
        subscribers.append(subscriber)
    }

    func publish(_ event: DeliveryEvent) async {
        switch event {
        case .committed(let deliveries):
            for delivery in deliveries where late.remove(delivery.message.id) == nil { local[delivery.message.id] = delivery }
        case .revoked, .missed:
            await deliverLocally(event)
        case .presence(let change):
            here[change.user] = change.online ? change.role : nil
            presenceChanges += 1
            await deliverLocally(event)
            queue(BusEvent(node: node, presence: change))
        case .typing, .read:
            await deliverLocally(event)
            if let payload = BusEvent(node: node, event: event) { queue(payload) }
        }
    }

    private func queue(_ event: BusEvent) {
        guard event.kind == "presence" || outgoing.count < Self.maxQueuedEvents else {
            logger.warning("too many events waiting for the database; a typing notice or receipt was dropped")
            return
        }
        outgoing.append(event)
        eventsQueued.yield()
    }

    private nonisolated func sendEventsForever() async {
        for await _ in eventsToSend { await sendQueuedEvents() }
    }

    /// Sends what is queued, presence rows first (a node that reads them after the notice agrees with it).
    private func sendQueuedEvents() async {
        while !outgoing.isEmpty {
            let events = outgoing
            outgoing = []
            guard !databaseDown else {
                drop(events, because: "the heartbeat fails")
                continue
            }
            do {
                var presence: [String: PresenceChange] = [:]  // the last change of each user counts
                for event in events { if case .presence(let change)? = event.event(here: node) { presence[change.user] = change } }
                if !presence.isEmpty {
                    try await fanOut.recordPresence(online: presence.values.filter(\.online).map { (user: $0.user, role: $0.role) },
                                                    offline: presence.values.filter { !$0.online }.map(\.user))
                }
                for payload in BusEvent.payloads(events, limit: PostgresFanOut.maxPayloadBytes) { try await fanOut.notify(payload) }
            } catch {
                drop(events, because: "\(error)")
            }
        }
    }

    /// Ephemeral events are not kept for later; presence is recorded and announced again once the heartbeat gets
    /// through.
    private func drop(_ events: [BusEvent], because reason: String) {
        for event in events { if case .presence(let change)? = event.event(here: node) { unannounced[change.user] = change.role } }
        if events.contains(where: { $0.kind == "presence" }) { presenceUnsure = true }
        logger.warning("typing, receipts and presence were not sent to the other nodes",
                       metadata: ["events": "\(events.count)", "error": "\(reason)"])
    }

    private func deliverLocally(_ event: DeliveryEvent) async {
        for subscriber in subscribers { await subscriber.deliver(event) }
    }

    // MARK: Running

    /// Listens, catches up, beats, until cancelled.
    nonisolated func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.listenForever() }
            group.addTask { await self.beatForever() }
            group.addTask { await self.sendEventsForever() }
            await group.waitForAll()
        }
    }

    private nonisolated func listenForever() async {
        var failures = 0
        while !Task.isCancelled {
            do {
                try await fanOut.listen(ready: { await self.startListening() }) { channel, payload in
                    await self.received(channel: channel, payload: payload)
                }
            } catch where !Task.isCancelled {
                failures += 1
                logger.warning("listening for other nodes failed; reconnecting", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .milliseconds(min(2000, 100 << min(failures, 5))))
            } catch {
                return
            }
        }
    }

    private func startListening() async {
        await catchUp()
        do {
            for entry in try await fanOut.presence(expiry: expiry) {
                await deliverLocally(.presence(PresenceChange(user: entry.user, role: entry.role, online: true, node: entry.node)))
            }
        } catch {
            logger.warning("reading presence failed", metadata: ["error": "\(error)"])
        }
    }

    private func received(channel: String, payload: String) async {
        if channel == PostgresFanOut.batchChannel {
            await catchUp()
        } else {
            // This node's own events were delivered when they were published.
            for event in BusEvent.decode(payload) where event.node != node {
                if let delivery = event.event(here: node) { await deliverLocally(delivery) }
            }
        }
    }

    /// Delivers every batch after the last one delivered, in order, once.
    private func catchUp() async {
        guard !catchingUp else {
            catchUpAgain = true
            return
        }
        catchingUp = true
        repeat {
            catchUpAgain = false
            await deliverNewBatches()
        } while catchUpAgain
        catchingUp = false
    }

    private func deliverNewBatches() async {
        if delivered == nil {
            // Start from now: what was committed before this node started is the clients' backlog, not live. Until
            // this is known nothing is delivered: starting from 0 would deliver every batch still kept again.
            do {
                delivered = try await fanOut.newestBatch()
            } catch {
                logger.warning("reading the newest batch failed", metadata: ["error": "\(error)"])
                return
            }
        }
        while let after = delivered {
            let batches: [PostgresFanOut.Batch]
            do {
                batches = try await fanOut.batches(after: after)
            } catch {
                logger.warning("reading committed batches failed", metadata: ["error": "\(error)"])
                return
            }
            guard let first = batches.first else { return }
            if first.number != after + 1 { await missed(after + 1 ..< first.number) }
            for batch in batches where batch.number > delivered ?? after {
                guard let deliveries = await deliveries(of: batch) else { return }
                delivered = batch.number
                await deliverLocally(.committed(deliveries))
            }
        }
    }

    /// Batch numbers have no gaps (the counter's update rolls back with its transaction), so a gap means batches were
    /// pruned before this node read them: it fell behind by longer than batches are kept. Which conversations they
    /// touched is gone with them, so every connection here is asked to reconnect and resume by sequence.
    private func missed(_ numbers: Range<Int64>) async {
        logger.error("committed batches were pruned before this node delivered them; its clients reconnect to resume",
                     metadata: ["batches": "\(numbers.lowerBound)...\(numbers.upperBound - 1)"])
        local = [:]
        await deliverLocally(.missed)
    }

    /// The batch's messages ready to deliver. This node's own batch is waited for briefly: the writer publishes it
    /// right after its commit, and only it knows which connection sent each message.
    private func deliveries(of batch: PostgresFanOut.Batch) async -> [Delivery]? {
        if batch.node == node {
            for _ in 0..<200 where batch.messageIds.contains(where: { local[$0] == nil }) {
                try? await Task.sleep(for: .milliseconds(5))
            }
            if batch.messageIds.allSatisfy({ local[$0] != nil }) { return batch.messageIds.compactMap { local.removeValue(forKey: $0) } }
        }
        let stored: [ChatMessage]
        do {
            stored = try await messages.messages(ids: batch.messageIds)
        } catch {
            logger.warning("reading another node's messages failed", metadata: ["error": "\(error)"])
            return nil
        }
        guard batch.node == node else { return stored.compactMap { Delivery($0, origin: nil) } }
        // This node's batch, and the writer's deliveries were late: those that came keep their origin (the sender
        // gets its ack, not its own message); the others are dropped when they come.
        return stored.compactMap { message in
            if let own = local.removeValue(forKey: message.id) { return own }
            late.insert(message.id)
            return Delivery(message, origin: nil)
        }
    }

    private nonisolated func beatForever() async {
        var beats = 0
        while !Task.isCancelled {
            await beat()
            beats += 1
            if beats % 60 == 0 {
                do {
                    try await fanOut.prune(nodesSilentFor: .seconds(120), batchesOlderThan: .seconds(600))
                } catch {
                    logger.warning("pruning nodes and batches failed", metadata: ["error": "\(error)"])
                }
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }

    private func beat() async {
        do {
            try await fanOut.heartbeat()
        } catch {
            if judgeFrom != nil { logger.warning("heartbeat failed", metadata: ["error": "\(error)"]) }
            judgeFrom = nil
            databaseDown = true
            presenceUnsure = true
            return
        }
        databaseDown = false
        let now = ContinuousClock.now
        // After a failure or a stall (the last beat got through longer than an expiry ago) the others' heartbeats may
        // be as late as this node's: give them one expiry to come in.
        if judgeFrom == nil || lastBeat.map({ now - $0 > expiry }) == true { judgeFrom = now + expiry }
        lastBeat = now
        if presenceUnsure { await recordPresenceAgain() }
        if let judgeFrom, now >= judgeFrom { await lookForSilentNodes() }
        await catchUp()  // a notification missed while (re)connecting costs at most a second
    }

    /// Rewrites this node's presence rows (changes failed while the database was away, or the rows were pruned with
    /// this node) and announces its users again; announcing an unchanged state changes nothing elsewhere.
    private func recordPresenceAgain() async {
        let changes = presenceChanges
        do {
            try await fanOut.recordPresence(online: here.map { (user: $0.key, role: $0.value) }, replacingAll: true)
        } catch {
            logger.warning("recording presence failed", metadata: ["error": "\(error)"])
            return
        }
        // A change made meanwhile may have been overwritten: the next beat writes again.
        presenceUnsure = presenceChanges != changes
        let offline = unannounced.filter { here[$0.key] == nil }
        unannounced = [:]
        for (user, role) in here { queue(BusEvent(node: node, presence: PresenceChange(user: user, role: role, online: true, node: node))) }
        for (user, role) in offline { queue(BusEvent(node: node, presence: PresenceChange(user: user, role: role, online: false, node: node))) }
    }

    private func lookForSilentNodes() async {
        let liveness: PostgresFanOut.Liveness
        do {
            liveness = try await fanOut.liveness(expiry: expiry)
        } catch {
            logger.warning("looking for silent nodes failed", metadata: ["error": "\(error)"])
            return
        }
        for (name, users) in liveness.silent where name != node && !gone.contains(name) {
            gone.insert(name)
            logger.notice("a node stopped answering; its users are offline", metadata: ["node": "\(name)"])
            for user in users {
                await deliverLocally(.presence(PresenceChange(user: user.user, role: user.role, online: false, node: name)))
            }
        }
        // Pruned nodes are forgotten; a node that beats again is back, with the users its rows name.
        gone.formIntersection(Set(liveness.silent.keys).union(liveness.live))
        let back = gone.intersection(liveness.live)
        guard !back.isEmpty, let present = try? await fanOut.presence(expiry: expiry) else { return }
        gone.subtract(back)
        for name in back { logger.notice("a node answers again", metadata: ["node": "\(name)"]) }
        for entry in present where back.contains(entry.node) {
            await deliverLocally(.presence(PresenceChange(user: entry.user, role: entry.role, online: true, node: entry.node)))
        }
    }
}
