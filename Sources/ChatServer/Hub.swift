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

/// Who is connected, what each agent's roster looks like, and fan-out of messages and live events.
///
/// Owns all live routing state; every change goes through this actor. Work done here is small per event: frames
/// are encoded before they arrive (once per message, not per recipient) and a whole commit batch is handed over in
/// one call.
actor Hub {
    private struct ConversationInfo {
        var lastSeq = 0
        var customerMessages = 0
        var lastMessage: MessagePreview?
    }

    private struct ReadState {
        var seq = 0
        var customerMessagesRead = 0
    }

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

    private var conversations: [String: ConversationInfo] = [:]
    /// Customers known to exist (a token or a conversation), for the roster.
    private var customers: Set<String> = []
    /// agent -> customer -> read state
    private var readStates: [String: [String: ReadState]] = [:]
    private var dirtyCustomers: Set<String> = []
    private var rosterFlushScheduled = false
    private var shuttingDown = false
    private var nextId: UInt64 = 1

    init(metrics: ChatMetrics, syncBufferBytes: Int) {
        self.metrics = metrics
        self.syncBufferBytes = syncBufferBytes
    }

    /// Loads roster state from the store at start-up.
    func load(summaries: [ConversationSummary], customers: [String], markers: [StoredReadMarker]) {
        for summary in summaries {
            conversations[summary.customer] = ConversationInfo(lastSeq: summary.state.lastSeq,
                                                               customerMessages: summary.state.customerMessages,
                                                               lastMessage: summary.lastMessage)
        }
        self.customers = Set(customers).union(summaries.map(\.customer))
        for marker in markers {
            readStates[marker.user, default: [:]][marker.customer] = ReadState(seq: marker.seq,
                                                                             customerMessagesRead: marker.customerMessagesRead)
        }
    }

    func makeConnectionId() -> UInt64 {
        defer { nextId += 1 }
        return nextId
    }

    var isShuttingDown: Bool { shuttingDown }

    /// Registers a connection in the replaying state. Returns nil when the server is shutting down; for agents,
    /// returns the roster as this agent sees it.
    func register(_ connection: Connection) -> [RosterEntry]? {
        guard !shuttingDown else { return nil }
        connections[connection.id] = connection
        let firstOfUser = byUser[connection.user, default: []].isEmpty
        byUser[connection.user, default: []].insert(connection.id)
        syncing[connection.id] = SyncBuffer()
        switch connection.role {
        case .agent:
            agentConnections.insert(connection.id)
            publishPresence()
        case .customer:
            customerConnectionCount += 1
            customers.insert(connection.user)
            if firstOfUser { markDirty(connection.user) }
        }
        updateConnectionGauges()
        return connection.role == .agent ? roster(for: connection.user) : []
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

    func unregister(_ connection: Connection) {
        guard connections.removeValue(forKey: connection.id) != nil else { return }
        syncing[connection.id] = nil
        byUser[connection.user]?.remove(connection.id)
        let lastOfUser = byUser[connection.user]?.isEmpty ?? true
        if lastOfUser { byUser[connection.user] = nil }
        switch connection.role {
        case .agent:
            agentConnections.remove(connection.id)
            publishPresence()
        case .customer:
            customerConnectionCount -= 1
            if lastOfUser { markDirty(connection.user) }
        }
        updateConnectionGauges()
    }

    var agentsOnline: Int {
        Set(agentConnections.compactMap { connections[$0]?.user }).count
    }

    func isCustomer(_ name: String) -> Bool {
        customers.contains(name)
    }

    func lastSeq(of customer: String) -> Int {
        conversations[customer]?.lastSeq ?? 0
    }

    // MARK: Delivery

    /// Fans out stored messages, in commit order. Each message goes to its customer's connections and to every
    /// agent connection, except the connection that sent it (it got an ack).
    func publish(_ deliveries: [(message: ChatMessage, frame: EncodedFrame, origin: UInt64?)]) {
        var delivered = 0
        // A batch's frames for one connection leave together: one event-loop task and one flush each.
        var outgoing = OutboundBatch()
        for delivery in deliveries {
            let message = delivery.message
            var info = conversations[message.conversation] ?? ConversationInfo()
            info.lastSeq = max(info.lastSeq, message.seq)
            if message.senderRole == .customer { info.customerMessages += 1 }
            info.lastMessage = MessagePreview(sender: message.sender, text: ConversationSummary.previewText(message.text),
                                              sentAt: message.sentAt, seq: message.seq)
            conversations[message.conversation] = info
            customers.insert(message.conversation)
            markDirty(message.conversation)
            for id in byUser[message.conversation] ?? [] where id != delivery.origin {
                if let connection = route(delivery.frame, to: id) { outgoing.add(delivery.frame.buffer, to: connection) }
                delivered += 1
            }
            for id in agentConnections where id != delivery.origin {
                if let connection = route(delivery.frame, to: id) { outgoing.add(delivery.frame.buffer, to: connection) }
                delivered += 1
            }
        }
        outgoing.send()
        metrics.messagesDelivered.increment(by: delivered)
    }

    /// Sends a live event (typing, read receipt) to a conversation's customer and all agents, except `origin`.
    func relay(_ frame: EncodedFrame, conversation: String, except origin: UInt64) {
        for id in byUser[conversation] ?? [] where id != origin { deliver(frame, to: id) }
        for id in agentConnections where id != origin { deliver(frame, to: id) }
    }

    /// Records a read marker; agents' rosters change, the other side gets a receipt.
    func markRead(_ marker: StoredReadMarker, role: Role, receipt: EncodedFrame, origin: UInt64) {
        if role == .agent {
            readStates[marker.user, default: [:]][marker.customer] = ReadState(seq: marker.seq,
                                                                             customerMessagesRead: marker.customerMessagesRead)
            markDirty(marker.customer)
        }
        relay(receipt, conversation: marker.customer, except: origin)
    }

    private func deliver(_ frame: EncodedFrame, to id: UInt64) {
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
        guard let buffer = try? encodeFrame(.presence(Presence(agentsOnline: agentsOnline))) else { return }
        let frame = EncodedFrame(buffer: buffer)
        for (id, connection) in connections where connection.role == .customer { deliver(frame, to: id) }
    }

    // MARK: Roster

    private func roster(for agent: String) -> [RosterEntry] {
        customers.sorted().map { entry(for: $0, agent: agent) }
    }

    private func entry(for customer: String, agent: String) -> RosterEntry {
        let info = conversations[customer] ?? ConversationInfo()
        let read = readStates[agent]?[customer] ?? ReadState()
        return RosterEntry(customer: customer, online: !(byUser[customer]?.isEmpty ?? true), lastSeq: info.lastSeq,
                           lastMessage: info.lastMessage,
                           unread: max(0, info.customerMessages - read.customerMessagesRead), readSeq: read.seq)
    }

    /// Roster changes are coalesced: at most one `rosterUpdate` per agent connection every 50 ms, carrying every
    /// customer that changed, so a busy conversation costs agents one small frame per interval, not one per message.
    private func markDirty(_ customer: String) {
        dirtyCustomers.insert(customer)
        guard !rosterFlushScheduled, !agentConnections.isEmpty else { return }
        rosterFlushScheduled = true
        Task {
            try? await Task.sleep(for: .milliseconds(50))
            self.flushRoster()
        }
    }

    private func flushRoster() {
        rosterFlushScheduled = false
        let changed = dirtyCustomers.sorted()
        dirtyCustomers.removeAll(keepingCapacity: true)
        guard !changed.isEmpty else { return }
        var perAgent: [String: ByteBuffer] = [:]
        for id in agentConnections {
            guard let agent = connections[id]?.user else { continue }
            if perAgent[agent] == nil {
                let entries = changed.map { entry(for: $0, agent: agent) }
                perAgent[agent] = try? encodeFrame(.rosterUpdate(entries))
            }
            if let buffer = perAgent[agent] { deliver(EncodedFrame(buffer: buffer), to: id) }
        }
    }

    // MARK: Closing

    /// Closes the connections of the given sessions (revoked tokens).
    func disconnect(sessions: Set<Int64>, code: UInt16, reason: String) {
        for connection in connections.values where sessions.contains(connection.sessionId) {
            connection.outbox.close(code: code, reason: reason)
        }
    }

    /// Stops accepting connections and closes every open one with "going away".
    func shutdown() {
        shuttingDown = true
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
