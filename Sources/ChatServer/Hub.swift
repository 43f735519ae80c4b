import ChatProtocol
import ChatStore
import Foundation
import NIOCore

/// One authenticated WebSocket connection as the hub knows it.
final class Connection: Sendable {
    let id: UInt64
    let user: String
    let role: Role
    let sessionId: Int64
    let outbox: Outbox

    init(id: UInt64, user: String, role: Role, sessionId: Int64, outbox: Outbox) {
        self.id = id
        self.user = user
        self.role = role
        self.sessionId = sessionId
        self.outbox = outbox
    }
}

/// A frame encoded once and shared by every recipient. `conversation` and `seq` are set for chat messages, so a
/// connection that is still replaying its backlog can drop what the backlog already carried.
struct EncodedFrame: Sendable {
    var buffer: ByteBuffer
    var conversation: String?
    var seq: Int?
}

/// Who is connected here, and fan-out of what the delivery bus carries to them.
///
/// Owns the connection registry and the resync buffers; what rosters say is `Roster`'s. Work done here is small
/// per event: frames are encoded before they arrive (once per message, not per recipient) and a whole commit batch
/// is handed over in one call.
actor Hub: DeliverySubscriber {
    private let metrics: ChatMetrics
    private var connections: [UInt64: Connection] = [:]
    private var byUser: [String: Set<UInt64>] = [:]
    private var agentConnections: Set<UInt64> = []
    private var customerConnectionCount = 0
    /// Connections replaying their backlog: live frames wait here until the replay is done, up to
    /// `syncBufferBytes` each.
    private var syncing: [UInt64: SyncBuffer] = [:]
    private let syncBufferBytes: Int

    private struct SyncBuffer {
        var frames: [EncodedFrame] = []
        var bytes = 0
    }

    private var roster: Roster
    /// Wakes `runRosterUpdates`; holds at most one pending wake-up.
    private let rosterChanged: AsyncStream<Void>.Continuation
    private let rosterChanges: AsyncStream<Void>
    private var shuttingDown = false
    private var nextId: UInt64 = 1

    init(metrics: ChatMetrics, syncBufferBytes: Int, roster: Roster) {
        self.metrics = metrics
        self.syncBufferBytes = syncBufferBytes
        self.roster = roster
        (rosterChanges, rosterChanged) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    func makeConnectionId() -> UInt64 {
        defer { nextId += 1 }
        return nextId
    }

    var isShuttingDown: Bool { shuttingDown }

    /// Registers a connection in the replaying state. Returns nil when the server is shutting down; otherwise the
    /// roster as this user sees it (empty for customers) and whether this is the user's first connection here.
    func register(_ connection: Connection) -> (roster: [RosterEntry], firstOfUser: Bool)? {
        guard !shuttingDown else { return nil }
        connections[connection.id] = connection
        let firstOfUser = byUser[connection.user, default: []].isEmpty
        byUser[connection.user, default: []].insert(connection.id)
        syncing[connection.id] = SyncBuffer()
        switch connection.role {
        case .agent: agentConnections.insert(connection.id)
        case .customer: customerConnectionCount += 1
        }
        updateConnectionGauges()
        return (connection.role == .agent ? roster.entries(for: connection.user) : [], firstOfUser)
    }

    /// Ends the replay: frames that arrived meanwhile are queued, except messages the backlog already carried.
    func finishSync(_ connection: Connection, replayed: [String: Int]) {
        guard let waiting = syncing.removeValue(forKey: connection.id) else { return }
        for frame in waiting.frames {
            if let conversation = frame.conversation, let seq = frame.seq, let high = replayed[conversation], seq <= high {
                continue
            }
            connection.outbox.send(frame.buffer)
        }
    }

    /// Forgets a connection. Returns whether it was the user's last one here.
    func unregister(_ connection: Connection) -> Bool {
        guard connections.removeValue(forKey: connection.id) != nil else { return false }
        syncing[connection.id] = nil
        byUser[connection.user]?.remove(connection.id)
        let lastOfUser = byUser[connection.user]?.isEmpty ?? true
        if lastOfUser { byUser[connection.user] = nil }
        switch connection.role {
        case .agent: agentConnections.remove(connection.id)
        case .customer: customerConnectionCount -= 1
        }
        updateConnectionGauges()
        return lastOfUser
    }

    var agentsOnline: Int { roster.agentsOnline }

    func isCustomer(_ name: String) -> Bool {
        roster.isCustomer(name)
    }

    // MARK: Delivery

    func deliver(_ event: DeliveryEvent) {
        switch event {
        case .committed(let deliveries):
            publish(deliveries)
        case .typing(let conversation, let frame, let origin):
            relay(frame, conversation: conversation, except: origin)
        case .read(let marker, let role, let origin):
            roster.markRead(marker, role: role)
            rosterDidChange()
            relayReceipt(marker, role: role, except: origin)
        case .presence(let change):
            guard roster.apply(change) else { return }
            switch change.role {
            case .agent: publishPresence()
            case .customer: rosterDidChange()
            }
        case .revoked(let sessions):
            disconnect(sessions: sessions, code: CloseCode.sessionRevoked, reason: "token revoked")
        case .missed:
            for connection in connections.values {
                connection.outbox.close(code: CloseCode.goingAway, reason: "messages were missed; reconnect to resume", drain: true)
            }
        }
    }

    /// Fans out stored messages, in commit order. Each message goes to its customer's connections and to every
    /// agent connection, except the connection that sent it (it got an ack).
    private func publish(_ deliveries: [Delivery]) {
        var delivered = 0
        // A batch's frames for one connection leave together: one event-loop task and one flush each.
        var outgoing = OutboundBatch()
        for delivery in deliveries {
            roster.record(delivery.message)
            if let frame = delivery.customerFrame {
                for id in byUser[delivery.message.conversation] ?? [] where id != delivery.origin {
                    if let connection = route(frame, to: id) { outgoing.add(frame.buffer, to: connection) }
                    delivered += 1
                }
            }
            for id in agentConnections where id != delivery.origin {
                if let connection = route(delivery.frame, to: id) { outgoing.add(delivery.frame.buffer, to: connection) }
                delivered += 1
            }
        }
        if !deliveries.isEmpty { rosterDidChange() }
        outgoing.send()
        metrics.messagesDelivered.increment(by: delivered)
    }

    /// Sends a live event (typing, read receipt) to a conversation's customer and all agents, except `origin`.
    private func relay(_ frame: EncodedFrame, conversation: String, except origin: UInt64?) {
        for id in byUser[conversation] ?? [] where id != origin { send(frame, to: id) }
        for id in agentConnections where id != origin { send(frame, to: id) }
    }

    /// A read receipt: agents get the agents' numbering, the customer theirs.
    private func relayReceipt(_ marker: StoredReadMarker, role: Role, except origin: UInt64?) {
        func frame(seq: Int) -> EncodedFrame? {
            let receipt = ReadReceipt(conversation: marker.customer, reader: marker.user, readerRole: role, seq: seq)
            return (try? encodeFrame(.read(receipt))).map { EncodedFrame(buffer: $0) }
        }
        if let customerFrame = frame(seq: marker.customerSeq) {
            for id in byUser[marker.customer] ?? [] where id != origin { send(customerFrame, to: id) }
        }
        if let agentFrame = frame(seq: marker.seq) {
            for id in agentConnections where id != origin { send(agentFrame, to: id) }
        }
    }

    private func send(_ frame: EncodedFrame, to id: UInt64) {
        route(frame, to: id)?.outbox.send(frame.buffer)
    }

    /// The connection to send `frame` to now, or nil when there is none or it still replays its backlog (then the
    /// frame waits in its resync buffer).
    private func route(_ frame: EncodedFrame, to id: UInt64) -> Connection? {
        if var waiting = syncing[id] {
            guard waiting.bytes + frame.buffer.readableBytes <= syncBufferBytes else {
                connections[id]?.outbox.close(code: CloseCode.slowConsumer, reason: "too many messages during resync; reconnect")
                syncing[id] = nil
                return nil
            }
            syncing[id] = nil  // keep the array uniquely referenced while appending
            waiting.frames.append(frame)
            waiting.bytes += frame.buffer.readableBytes
            syncing[id] = waiting
            return nil
        }
        return connections[id]
    }

    private func publishPresence() {
        guard let buffer = try? encodeFrame(.presence(Presence(agentsOnline: roster.agentsOnline))) else { return }
        let frame = EncodedFrame(buffer: buffer)
        for (id, connection) in connections where connection.role == .customer { send(frame, to: id) }
    }

    // MARK: Canned replies

    private(set) var cannedReplies: [CannedReply]?

    /// The canned replies as stored; when they changed, every agent gets the new list.
    func setCannedReplies(_ replies: [CannedReply]) {
        guard replies != cannedReplies else { return }
        let first = cannedReplies == nil
        cannedReplies = replies
        guard !first, let buffer = try? encodeFrame(.cannedReplies(CannedReplies(replies: replies))) else { return }
        let frame = EncodedFrame(buffer: buffer)
        for id in agentConnections { send(frame, to: id) }
    }

    // MARK: Snoozes

    /// Ends snoozes at their time, to the second, so that agents see those conversations open again. Runs until the
    /// task running it is cancelled; a check a second costs one hop onto the hub.
    nonisolated func runSnoozeEnds() async {
        while !Task.isCancelled {
            do { try await Task.sleep(for: .seconds(1)) } catch { return }
            await endDueSnoozes()
        }
    }

    private func endDueSnoozes() {
        if roster.endSnoozes(now: epochMilliseconds()) { rosterDidChange() }
    }

    /// The roster knows every conversation's status and assignee: the rules of automatic assignment read it here.
    func workload(now: Int64) -> Roster.Workload {
        roster.workload(now: now)
    }

    // MARK: Roster updates

    private func rosterDidChange() {
        guard !agentConnections.isEmpty else { return }
        rosterChanged.yield()
    }

    /// Roster changes are coalesced: at most one `rosterUpdate` per agent connection every 50 ms, carrying every
    /// customer that changed, so a busy conversation costs agents one small frame per interval, not one per message.
    /// Runs until the task running it is cancelled.
    nonisolated func runRosterUpdates() async {
        for await _ in rosterChanges {
            do { try await Task.sleep(for: .milliseconds(50)) } catch { return }
            await flushRoster()
        }
    }

    private func flushRoster() {
        let changed = roster.takeChanged()
        guard !changed.isEmpty else { return }
        var perAgent: [String: ByteBuffer] = [:]
        for id in agentConnections {
            guard let agent = connections[id]?.user else { continue }
            if perAgent[agent] == nil {
                perAgent[agent] = try? encodeFrame(.rosterUpdate(changed.map { roster.entry(for: $0, agent: agent) }))
            }
            if let buffer = perAgent[agent] { send(EncodedFrame(buffer: buffer), to: id) }
        }
    }

    // MARK: Closing

    /// Closes the connections of the given sessions (revoked tokens).
    private func disconnect(sessions: Set<Int64>, code: UInt16, reason: String) {
        for connection in connections.values where sessions.contains(connection.sessionId) {
            connection.outbox.close(code: code, reason: reason)
        }
    }

    /// Stops accepting connections and closes every open one with "going away".
    func shutdown() {
        shuttingDown = true
        rosterChanged.finish()
        for connection in connections.values {
            connection.outbox.close(code: CloseCode.goingAway, reason: "server shutting down; reconnect later", drain: true)
        }
    }

    var connectionCount: Int { connections.count }

    private func updateConnectionGauges() {
        metrics.setConnections(customers: customerConnectionCount, agents: agentConnections.count)
    }
}

/// Encodes a server frame into a buffer ready to be written as a WebSocket text frame.
func encodeFrame(_ frame: ServerFrame) throws -> ByteBuffer {
    ByteBuffer(bytes: try FrameCodec().encode(frame))
}
