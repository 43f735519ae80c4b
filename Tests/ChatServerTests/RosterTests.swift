import ChatProtocol
@testable import ChatServer
import ChatStore
import Testing

@Suite("Roster")
struct RosterTests {
    private func message(_ conversation: String, seq: Int, from sender: String, role: Role, text: String = "hi") -> ChatMessage {
        ChatMessage(id: Int64(seq), conversation: conversation, seq: seq, sender: sender, senderRole: role,
                    clientId: "c\(seq)", text: text, sentAt: Int64(seq) * 1000, broadcast: false)
    }

    private func apply(_ roster: inout Roster, _ change: PresenceChange) -> Bool {
        roster.apply(change)
    }

    private func takeChanged(_ roster: inout Roster) -> [String] {
        roster.takeChanged()
    }

    @Test("unread counts are per agent: customer messages after each agent's own marker")
    func unreadPerAgent() {
        var roster = Roster(customers: ["alice"])
        roster.record(message("alice", seq: 1, from: "alice", role: .customer))
        roster.record(message("alice", seq: 2, from: "sam", role: .agent))
        roster.record(message("alice", seq: 3, from: "alice", role: .customer, text: "still there?"))
        #expect(roster.entry(for: "alice", agent: "sam").unread == 2)
        roster.markRead(StoredReadMarker(user: "sam", customer: "alice", seq: 2, customerMessagesRead: 1), role: .agent)
        #expect(roster.entry(for: "alice", agent: "sam").unread == 1)
        #expect(roster.entry(for: "alice", agent: "sam").readSeq == 2)
        #expect(roster.entry(for: "alice", agent: "kim").unread == 2)
        let entry = roster.entry(for: "alice", agent: "kim")
        #expect(entry.lastSeq == 3 && entry.lastMessage?.text == "still there?" && entry.lastMessage?.sender == "alice")
        // A customer's own marker changes no agent's count.
        roster.markRead(StoredReadMarker(user: "alice", customer: "alice", seq: 3, customerMessagesRead: 2), role: .customer)
        #expect(roster.entry(for: "alice", agent: "kim").unread == 2)
    }

    @Test("starts from stored summaries and markers; customers without messages are listed, sorted")
    func loadsFromStore() {
        let summary = ConversationSummary(customer: "bob", state: ConversationState(lastSeq: 7, customerMessages: 4),
                                          lastMessage: MessagePreview(sender: "bob", text: "x", sentAt: 1, seq: 7))
        let roster = Roster(summaries: [summary], customers: ["carol", "bob"],
                            markers: [StoredReadMarker(user: "sam", customer: "bob", seq: 5, customerMessagesRead: 3)])
        #expect(roster.entries(for: "sam").map(\.customer) == ["bob", "carol"])
        #expect(roster.entry(for: "bob", agent: "sam").unread == 1)
        #expect(roster.entry(for: "bob", agent: "kim").unread == 4)
        #expect(roster.entry(for: "bob", agent: "sam").lastSeq == 7 && roster.entry(for: "carol", agent: "sam").lastSeq == 0)
        #expect(roster.isCustomer("carol") && !roster.isCustomer("sam"))
    }

    @Test("online while any node has a connection; agents online counted once however many nodes")
    func presenceAcrossNodes() {
        var roster = Roster()
        #expect(apply(&roster, PresenceChange(user: "sam", role: .agent, online: true, node: "a")))
        #expect(!apply(&roster, PresenceChange(user: "sam", role: .agent, online: true, node: "b")))
        #expect(roster.agentsOnline == 1)
        #expect(!apply(&roster, PresenceChange(user: "sam", role: .agent, online: false, node: "a")))
        #expect(roster.agentsOnline == 1)
        #expect(apply(&roster, PresenceChange(user: "sam", role: .agent, online: false, node: "b")))
        #expect(roster.agentsOnline == 0)

        #expect(apply(&roster, PresenceChange(user: "alice", role: .customer, online: true, node: "a")))
        #expect(roster.isCustomer("alice") && roster.entry(for: "alice", agent: "sam").online)
        let changed = roster.takeChanged()
        #expect(changed == ["alice"])
        #expect(takeChanged(&roster).isEmpty)
        roster.apply(PresenceChange(user: "alice", role: .customer, online: false, node: "a"))
        #expect(!roster.entry(for: "alice", agent: "sam").online)
    }

    @Test("changes are reported once, sorted, and include every conversation touched")
    func changedCustomers() {
        var roster = Roster()
        roster.record(message("zoe", seq: 1, from: "zoe", role: .customer))
        roster.record(message("amy", seq: 1, from: "amy", role: .customer))
        roster.record(message("zoe", seq: 2, from: "zoe", role: .customer))
        #expect(takeChanged(&roster) == ["amy", "zoe"])
        #expect(takeChanged(&roster).isEmpty)
        roster.markRead(StoredReadMarker(user: "sam", customer: "zoe", seq: 2, customerMessagesRead: 2), role: .agent)
        #expect(takeChanged(&roster) == ["zoe"])
    }

    @Test("status and assignee: events set them, a customer's message reopens, a snooze ends at its time, stored state is read back")
    func workflow() {
        var roster = Roster(customers: ["alice"])
        roster.record(message("alice", seq: 1, from: "alice", role: .customer))
        func event(_ seq: Int, _ event: ConversationEvent) -> ChatMessage {
            var entry = message("alice", seq: seq, from: "sam", role: .agent)
            entry.isPrivate = true
            entry.event = event
            return entry
        }
        roster.record(event(2, .status(.snoozed, until: 10_000)))
        roster.record(event(3, .assignment("sam")))
        _ = takeChanged(&roster)
        #expect(roster.entry(for: "alice", agent: "kim", now: 9_999).status == .snoozed)
        #expect(roster.entry(for: "alice", agent: "kim", now: 9_999).until == 10_000)
        #expect(roster.entry(for: "alice", agent: "kim", now: 9_999).assignee == "sam")
        let early = roster.endSnoozes(now: 9_999)
        #expect(!early)
        let ended = roster.endSnoozes(now: 10_000)
        #expect(ended && takeChanged(&roster) == ["alice"], "the entry changes when the snooze ends")
        let again = roster.endSnoozes(now: 20_000)
        #expect(!again, "once")
        #expect(roster.entry(for: "alice", agent: "kim", now: 10_000).status == .open)
        #expect(roster.entry(for: "alice", agent: "kim", now: 10_000).until == nil)

        roster.record(event(4, .status(.resolved)))
        #expect(roster.entry(for: "alice", agent: "kim").status == .resolved)
        #expect(roster.workload(now: 0).openByAgent["sam"] == nil, "a resolved conversation is no load")
        roster.record(message("alice", seq: 5, from: "alice", role: .customer))
        #expect(roster.entry(for: "alice", agent: "kim").status == .open, "the customer's message reopens it")
        #expect(roster.workload(now: 0).openByAgent["sam"] == 1 && roster.workload(now: 0).assigned == ["alice"])
        roster.record(event(6, .assignment(nil)))
        #expect(roster.entry(for: "alice", agent: "kim").assignee == nil)

        // Read back from the store: the same rule.
        let stored = ConversationSummary(customer: "bob", state: ConversationState(lastSeq: 9, customerMessages: 3),
                                         lastMessage: nil,
                                         workflow: ConversationWorkflow(status: .resolved, statusCustomerMessages: 2, assignee: "kim"))
        let loaded = Roster(summaries: [stored])
        #expect(loaded.entry(for: "bob", agent: "sam").status == .open, "a customer message came after the resolution")
        #expect(loaded.entry(for: "bob", agent: "sam").assignee == "kim")
    }
}
