import ChatProtocol
import ChatStore

/// Who is online, and each conversation's counters and last message as agents see them in their roster, with
/// unread counts per agent. A value: the hub owns one and routes; this type decides what an entry says.
struct Roster {
    private struct ConversationInfo {
        var lastSeq = 0
        var customerMessages = 0
        var lastMessage: MessagePreview?
        var workflow = ConversationWorkflow()
    }

    private struct ReadState {
        var seq = 0
        var customerMessagesRead = 0
    }

    private var conversations: [String: ConversationInfo] = [:]
    /// Customers known to exist (a token or a conversation).
    private var customers: Set<String> = []
    /// agent -> customer -> read state
    private var readStates: [String: [String: ReadState]] = [:]
    /// user -> nodes where the user has connections; a user is online while any node says so.
    private var online: [String: (role: Role, nodes: Set<String>)] = [:]
    /// Customers whose entries changed since `takeChanged`.
    private var changed: Set<String> = []
    /// Snoozes with an end, not yet over: customer -> end.
    private var snoozeEnds: [String: Int64] = [:]

    init(summaries: [ConversationSummary] = [], customers: [String] = [], markers: [StoredReadMarker] = []) {
        for summary in summaries {
            conversations[summary.customer] = ConversationInfo(lastSeq: summary.state.lastSeq,
                                                               customerMessages: summary.state.customerMessages,
                                                               lastMessage: summary.lastMessage, workflow: summary.workflow)
            noteSnooze(of: summary.customer)
        }
        self.customers = Set(customers).union(summaries.map(\.customer))
        for marker in markers {
            readStates[marker.user, default: [:]][marker.customer] = ReadState(seq: marker.seq,
                                                                             customerMessagesRead: marker.customerMessagesRead)
        }
    }

    func isCustomer(_ name: String) -> Bool {
        customers.contains(name)
    }

    /// Distinct agents online anywhere.
    var agentsOnline: Int {
        online.values.count { $0.role == .agent }
    }

    /// A stored message: its conversation's counters and last message change.
    mutating func record(_ message: ChatMessage) {
        var info = conversations[message.conversation] ?? ConversationInfo()
        info.lastSeq = max(info.lastSeq, message.seq)
        if message.senderRole == .customer { info.customerMessages += 1 }
        if let event = message.event { info.workflow.apply(event, customerMessages: info.customerMessages) }
        if info.lastMessage.map({ $0.seq <= message.seq }) ?? true {
            info.lastMessage = MessagePreview(sender: message.sender, text: ConversationSummary.previewText(message.text),
                                              sentAt: message.sentAt, seq: message.seq)
        }
        conversations[message.conversation] = info
        customers.insert(message.conversation)
        changed.insert(message.conversation)
        // Only an event or a message in a snoozed conversation can start or end a snooze: no work for the others.
        if message.event != nil || snoozeEnds[message.conversation] != nil { noteSnooze(of: message.conversation) }
    }

    private mutating func noteSnooze(of customer: String) {
        guard let info = conversations[customer] else { return }
        snoozeEnds[customer] = info.workflow.snoozeEnd(customerMessages: info.customerMessages, now: .min)
    }

    /// Snoozes whose time has come: their entries change (to open). Returns whether any did.
    mutating func endSnoozes(now: Int64) -> Bool {
        let due = snoozeEnds.filter { $0.value <= now }.keys
        for customer in due {
            snoozeEnds[customer] = nil
            changed.insert(customer)
        }
        return !due.isEmpty
    }

    /// What automatic assignment weighs: each agent's open conversations, and whether a conversation has an
    /// assignee.
    struct Workload: Sendable {
        var openByAgent: [String: Int]
        var online: Set<String>
        var assigned: Set<String>
    }

    func workload(now: Int64) -> Workload {
        var openByAgent: [String: Int] = [:]
        var assigned: Set<String> = []
        for (customer, info) in conversations {
            guard let agent = info.workflow.assignee else { continue }
            assigned.insert(customer)
            if info.workflow.status(customerMessages: info.customerMessages, now: now) == .open { openByAgent[agent, default: 0] += 1 }
        }
        return Workload(openByAgent: openByAgent, online: Set(online.filter { $0.value.role == .agent }.keys), assigned: assigned)
    }

    /// A stored read marker. Only agents' markers count for unread numbers.
    mutating func markRead(_ marker: StoredReadMarker, role: Role) {
        guard role == .agent else { return }
        readStates[marker.user, default: [:]][marker.customer] = ReadState(seq: marker.seq,
                                                                         customerMessagesRead: marker.customerMessagesRead)
        changed.insert(marker.customer)
    }

    /// A user came online or went offline on a node. Returns whether the user's online state changed.
    @discardableResult
    mutating func apply(_ change: PresenceChange) -> Bool {
        let wasOnline = online[change.user] != nil
        var entry = online[change.user] ?? (change.role, [])
        if change.online { entry.nodes.insert(change.node) } else { entry.nodes.remove(change.node) }
        online[change.user] = entry.nodes.isEmpty ? nil : entry
        let isOnline = online[change.user] != nil
        if change.role == .customer {
            customers.insert(change.user)
            if wasOnline != isOnline { changed.insert(change.user) }
        }
        return wasOnline != isOnline
    }

    /// The whole roster as `agent` sees it, sorted by customer.
    func entries(for agent: String) -> [RosterEntry] {
        customers.sorted().map { entry(for: $0, agent: agent) }
    }

    func entry(for customer: String, agent: String, now: Int64 = epochMilliseconds()) -> RosterEntry {
        let info = conversations[customer] ?? ConversationInfo()
        let read = readStates[agent]?[customer] ?? ReadState()
        return RosterEntry(customer: customer, online: online[customer] != nil, lastSeq: info.lastSeq,
                           lastMessage: info.lastMessage,
                           unread: max(0, info.customerMessages - read.customerMessagesRead), readSeq: read.seq,
                           status: info.workflow.status(customerMessages: info.customerMessages, now: now),
                           until: info.workflow.snoozeEnd(customerMessages: info.customerMessages, now: now),
                           assignee: info.workflow.assignee)
    }

    /// The customers whose entries changed since the last call, sorted; forgets them.
    mutating func takeChanged() -> [String] {
        defer { changed.removeAll(keepingCapacity: true) }
        return changed.sorted()
    }
}
