import ChatProtocol
import ChatStore

/// How new work is shared out among agents (`--auto-assign`).
public enum AutoAssignPolicy: String, Sendable, CaseIterable {
    /// To the online agent with the fewest open conversations, in turn among equals, up to a limit each.
    case roundRobin = "round-robin"
}

/// Assigns a customer's conversation to an agent when the customer writes and nobody has it. Subscribed to the
/// delivery bus after the hub, so the roster it weighs already holds the message. On several nodes only the node
/// that stored the message decides (its deliveries carry a local origin), so one message makes one assignment.
actor AutoAssigner: DeliverySubscriber {
    /// The name workflow rows written by the server carry as their sender.
    static let sender = AutoAssignSender.name

    private let hub: Hub
    private let writer: MessageWriter
    private let limit: Int
    /// Conversations with an assignment submitted and not yet delivered: customer -> when submitted.
    private var submitted: [String: ContinuousClock.Instant] = [:]
    private var lastChosen: String?

    init(hub: Hub, writer: MessageWriter, limit: Int) {
        self.hub = hub
        self.writer = writer
        self.limit = limit
    }

    func deliver(_ event: DeliveryEvent) async {
        guard case .committed(let deliveries) = event else { return }
        var waiting: [ChatMessage] = []
        for delivery in deliveries {
            let message = delivery.message
            if message.event?.kind == .assignment {
                submitted[message.conversation] = nil
            } else if delivery.origin != nil, message.senderRole == .customer {
                waiting.append(message)
            }
        }
        guard !waiting.isEmpty else { return }
        let now = ContinuousClock.now
        // A submission that never arrived (its batch failed) stops blocking after a while.
        submitted = submitted.filter { now - $0.value < .seconds(10) }
        var workload = await hub.workload(now: epochMilliseconds())
        for message in waiting where !workload.assigned.contains(message.conversation) && submitted[message.conversation] == nil {
            guard let agent = choose(from: workload) else { return }
            workload.openByAgent[agent, default: 0] += 1
            workload.assigned.insert(message.conversation)
            submitted[message.conversation] = now
            lastChosen = agent
            let outgoing = OutgoingMessage(sender: Self.sender, senderRole: .agent, clientId: "§assignment:auto-\(message.id)",
                                           text: "assigned to \(agent) automatically", target: .conversation(message.conversation),
                                           kind: .event(.assignment(agent)))
            try? await writer.submit(MessageWriter.Pending(message: outgoing, origin: nil, receivedAt: now))
        }
    }

    /// Fewest open conversations first; among equals, the next name after the last one chosen.
    private func choose(from workload: Roster.Workload) -> String? {
        let candidates = workload.online.filter { workload.openByAgent[$0, default: 0] < limit }.sorted()
        guard let fewest = candidates.map({ workload.openByAgent[$0, default: 0] }).min() else { return nil }
        let equals = candidates.filter { workload.openByAgent[$0, default: 0] == fewest }
        return equals.first { name in lastChosen.map { name > $0 } ?? true } ?? equals.first
    }
}
