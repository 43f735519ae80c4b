import ChatClient
import ChatProtocol
import ChatServer
import ChatServerFixture
import ChatStore
import ChatStorePostgres
import Foundation
import Logging
import TestProcesses
import Testing

/// Status, assignment and private notes through real servers and WebSocket clients: on SQLite (one node) and on
/// PostgreSQL (two nodes, the agents on different ones).
@Suite("Support workflow", .timeLimit(.minutes(3)), .stopsServers)
struct WorkflowTests {
    private static let logger: Logger = {
        var logger = Logger(label: "test.workflow")
        logger.logLevel = .error
        return logger
    }()

    /// Two nodes of `backend` (one server twice for SQLite) with tokens for `users`.
    private func withNodes(_ backend: StoreBackend, users: [(String, Role)], configure: @escaping @Sendable (inout ServerConfiguration) -> Void = { _ in },
                           _ body: @escaping @Sendable (TestServer, TestServer, [String: String]) async throws -> Void) async throws {
        try await backend.withServers(nodes: 2, configure: configure) { servers, makeToken in
            var tokens: [String: String] = [:]
            for (user, role) in users { tokens[user] = try await makeToken(user, role) }
            try await body(servers[0], servers[1], tokens)
        }
    }

    @Test("status and assignment: both agents see each change at once and after reconnecting; the customer sees none; a customer's message reopens",
          arguments: StoreBackend.allCases)
    func statusAndAssignment(_ backend: StoreBackend) async throws {
        try await withNodes(backend, users: [("alice", .customer), ("sam", .agent), ("kim", .agent)]) { a, b, tokens in
            let alice = try await a.connect("alice", token: tokens["alice"] ?? "", lastSeq: 0)
            let sam = try await a.connect("sam", token: tokens["sam"] ?? "", lastSeqs: [:])
            let kim = try await b.connect("kim", token: tokens["kim"] ?? "", lastSeqs: [:])
            _ = try await alice.synced()
            try alice.send("my parcel is damaged", clientId: "c1")
            #expect(try await alice.ack().seq == 1)
            _ = try await sam.message()
            _ = try await kim.message()

            // Resolve: the requester gets its answer and the timeline entry; the other agent the entry and the roster.
            try sam.connection.send(.setStatus(SetStatus(requestId: "r1", conversation: "alice", status: .resolved)))
            let answer = try await sam.updated()
            #expect(answer.requestId == "r1" && answer.seq == 2 && answer.event == .status(.resolved) && !answer.duplicate)
            let entry = try await sam.message()
            #expect(entry.seq == 2 && entry.isPrivate == true && entry.event == .status(.resolved) && entry.text == "sam resolved the conversation")
            let atKim = try await kim.message()
            #expect(atKim.seq == 2 && atKim.event == .status(.resolved))
            #expect(try await kim.rosterEntry("alice") { $0.status == .resolved }.assignee == nil)

            // Assign to kim, by sam; then a resend of the same request changes nothing.
            try sam.connection.send(.assign(Assign(requestId: "r2", conversation: "alice", agent: "kim")))
            #expect(try await sam.updated().seq == 3)
            let assigned = try await kim.message()
            #expect(assigned.seq == 3 && assigned.event == .assignment("kim") && assigned.text == "sam assigned the conversation to kim")
            #expect(try await kim.rosterEntry("alice") { $0.assignee == "kim" }.status == .resolved)
            _ = try await sam.message()
            try sam.connection.send(.assign(Assign(requestId: "r2", conversation: "alice", agent: "kim")))
            let again = try await sam.updated()
            #expect(again.duplicate && again.seq == 3)

            // Refusals, each naming the request; nothing stored.
            try sam.connection.send(.assign(Assign(requestId: "r3", conversation: "alice", agent: "alice")))
            let notAgent = try await sam.error()
            #expect(notAgent.code == .invalidFrame && notAgent.ref == "r3")
            try sam.connection.send(.setStatus(SetStatus(requestId: "r4", conversation: "alice", status: .resolved, until: epochMilliseconds() + 60_000)))
            #expect(try await sam.error().ref == "r4")
            try sam.connection.send(.setStatus(SetStatus(requestId: "r5", conversation: "nobody", status: .resolved)))
            #expect(try await sam.error().code == .unknownConversation)
            try alice.connection.send(.setStatus(SetStatus(requestId: "r6", conversation: "alice", status: .resolved)))
            #expect(try await alice.error().code == .forbidden)
            try alice.connection.send(.note(Note(clientId: "n0", conversation: "alice", text: "sneaky")))
            #expect(try await alice.error().code == .forbidden)

            // The customer saw none of it.
            let seenByAlice = try await alice.framesUntilPong()
            #expect(!seenByAlice.contains { if case .message = $0 { true } else { false } })

            // kim reconnects having seen only seq 1: the backlog replays both changes; the roster says where it stands.
            await kim.leave()
            let kimAgain = try await b.connect("kim", token: tokens["kim"] ?? "", lastSeqs: ["alice": 1])
            let roster = try await kimAgain.roster()
            #expect(roster.first { $0.customer == "alice" }.map { ($0.status, $0.assignee) } ?? (.open, nil) == (.resolved, "kim"))
            let backlog = [try await kimAgain.message(), try await kimAgain.message()]
            #expect(backlog.map(\.seq) == [2, 3] && backlog.map(\.event) == [.status(.resolved), .assignment("kim")])
            #expect(try await kimAgain.synced().lastSeqs["alice"] == 3)

            // The customer writes again: the conversation reopens by itself; her numbering has no gap.
            try alice.send("are you there?", clientId: "c2")
            #expect(try await alice.ack().seq == 2)
            #expect(try await kimAgain.message().seq == 4)
            let reopened = try await kimAgain.rosterEntry("alice") { $0.status == .open }
            #expect(reopened.assignee == "kim" && reopened.lastSeq == 4)

            // History in each numbering.
            let agentPage = try await sam.history("alice")
            #expect(agentPage.messages.map(\.seq) == [1, 2, 3, 4])
            let customerPage = try await alice.history(nil)
            #expect(customerPage.messages.map(\.seq) == [1, 2] && customerPage.messages.allSatisfy { $0.isPrivate == nil && $0.event == nil })
            for client in [alice, sam, kimAgain] { await client.leave() }
        }
    }

    @Test("notes: agents get them live, in the backlog and in history; the customer on no path, not even as a gap",
          arguments: StoreBackend.allCases)
    func notes(_ backend: StoreBackend) async throws {
        try await withNodes(backend, users: [("alice", .customer), ("sam", .agent), ("kim", .agent)]) { a, b, tokens in
            let alice = try await a.connect("alice", token: tokens["alice"] ?? "", lastSeq: 0)
            let sam = try await a.connect("sam", token: tokens["sam"] ?? "", lastSeqs: [:])
            let kim = try await b.connect("kim", token: tokens["kim"] ?? "", lastSeqs: [:])
            _ = try await alice.synced()
            try alice.send("where is my refund?", clientId: "c1")
            _ = try await alice.ack()
            _ = try await sam.message()
            _ = try await kim.message()

            try sam.connection.send(.note(Note(clientId: "n1", conversation: "alice", text: "refund approved by finance, tell her")))
            let noteAck = try await sam.ack()
            #expect(noteAck.seq == 2 && !noteAck.duplicate)
            let note = try await kim.message()
            #expect(note.seq == 2 && note.isPrivate == true && note.text.hasPrefix("refund approved") && note.event == nil)
            try sam.connection.send(.note(Note(clientId: "n1", conversation: "alice", text: "refund approved by finance, tell her")))
            #expect(try await sam.ack().duplicate)

            try sam.send("your refund is on its way", clientId: "s1", to: "alice")
            #expect(try await sam.ack().seq == 3)
            let reply = try await alice.message()
            #expect(reply.seq == 2 && reply.text == "your refund is on its way" && reply.isPrivate == nil,
                    "the customer's numbering skips the note without a gap")
            #expect(try await kim.message().seq == 3)

            // Read receipts cross between the numberings.
            try alice.connection.send(.read(ReadMarker(seq: 2)))
            let receiptAtKim = try await kim.receipt()
            #expect(receiptAtKim.reader == "alice" && receiptAtKim.seq == 3)
            try kim.connection.send(.read(ReadMarker(conversation: "alice", seq: 2)))
            let receiptAtAlice = try await alice.receipt()
            #expect(receiptAtAlice.reader == "kim" && receiptAtAlice.seq == 1, "kim read up to the note: for alice, her message 1")

            // Every frame alice got live: no note, and sequence numbers 1, 2 only.
            let live = try await alice.framesUntilPong()
            #expect(!live.contains { frame in if case .message(let message) = frame { message.isPrivate == true } else { false } })

            // Backlog from scratch on another connection of the customer, then her history.
            let aliceAgain = try await b.connect("alice", token: tokens["alice"] ?? "", lastSeq: 0)
            let backlog = [try await aliceAgain.message(), try await aliceAgain.message()]
            #expect(backlog.map(\.seq) == [1, 2] && backlog.map(\.text) == ["where is my refund?", "your refund is on its way"])
            #expect(try await aliceAgain.synced().lastSeqs["alice"] == 2)
            let page = try await aliceAgain.history(nil)
            #expect(page.messages.map(\.seq) == [1, 2] && !page.messages.contains { $0.text.contains("finance") })
            let older = try await aliceAgain.history(nil, before: 2)
            #expect(older.messages.map(\.seq) == [1] && !older.hasMore)
            let newer = try await aliceAgain.history(nil, after: 1)
            #expect(newer.messages.map(\.text) == ["your refund is on its way"])

            // Agents: everything, in their numbering, live and after reconnecting.
            let samPage = try await sam.history("alice")
            #expect(samPage.messages.map(\.seq) == [1, 2, 3] && samPage.messages[1].isPrivate == true)
            let kimAgain = try await a.connect("kim", token: tokens["kim"] ?? "", lastSeqs: ["alice": 1])
            _ = try await kimAgain.roster()
            let kimBacklog = [try await kimAgain.message(), try await kimAgain.message()]
            #expect(kimBacklog.map(\.seq) == [2, 3] && kimBacklog[0].isPrivate == true)
            for client in [alice, aliceAgain, sam, kim, kimAgain] { await client.leave() }
        }
    }

    @Test("a snooze ends by itself at its time; one without a time ends when the customer writes")
    func snoozes() async throws {
        try await withNodes(.sqlite, users: [("alice", .customer), ("sam", .agent)]) { server, _, tokens in
            let alice = try await server.connect("alice", token: tokens["alice"] ?? "", lastSeq: 0)
            let sam = try await server.connect("sam", token: tokens["sam"] ?? "", lastSeqs: [:])
            _ = try await alice.synced()
            try alice.send("hello", clientId: "c1")
            _ = try await alice.ack()
            let until = epochMilliseconds() + 2_000
            try sam.connection.send(.setStatus(SetStatus(requestId: "z1", conversation: "alice", status: .snoozed, until: until)))
            _ = try await sam.updated()
            let snoozed = try await sam.rosterEntry("alice") { $0.status == .snoozed }
            #expect(snoozed.until == until)
            // No message in between: the server's own clock ends it.
            let woken = try await sam.rosterEntry("alice") { $0.status == .open }
            #expect(epochMilliseconds() >= until && woken.until == nil)

            try sam.connection.send(.setStatus(SetStatus(requestId: "z2", conversation: "alice", status: .snoozed)))
            _ = try await sam.updated()
            let indefinitely = try await sam.rosterEntry("alice") { $0.status == .snoozed }
            #expect(indefinitely.until == nil)
            try alice.send("anyone?", clientId: "c2")
            _ = try await alice.ack()
            #expect(try await sam.rosterEntry("alice") { $0.status == .open }.lastSeq == 4)
            for client in [alice, sam] { await client.leave() }
        }
    }

    @Test("automatic assignment spreads new conversations over online agents, fewest open first, up to the limit",
          arguments: StoreBackend.allCases)
    func autoAssignment(_ backend: StoreBackend) async throws {
        let customers = ["c1", "c2", "c3", "c4", "c5"]
        try await withNodes(backend, users: customers.map { ($0, .customer) } + [("sam", .agent), ("kim", .agent), ("lee", .agent)],
                            configure: { $0.autoAssign = .roundRobin; $0.autoAssignLimit = 2 }) { a, b, tokens in
            let sam = try await a.connect("sam", token: tokens["sam"] ?? "", lastSeqs: [:])
            let kim = try await b.connect("kim", token: tokens["kim"] ?? "", lastSeqs: [:])
            _ = try await sam.roster()
            // Both agents online everywhere before the first customer writes.
            _ = try await kim.roster()
            try await Task.sleep(for: .milliseconds(backend == .postgres ? 1_500 : 100))
            var assignees: [String: String] = [:]
            for (index, name) in customers.enumerated() {
                let customer = try await (index.isMultiple(of: 2) ? a : b).connect(name, token: tokens[name] ?? "", lastSeq: 0)
                _ = try await customer.synced()
                try customer.send("hello from \(name)", clientId: "m1")
                _ = try await customer.ack()
                if index < 4 {
                    let event = try await sam.connection.receive(timeout: frameWait) { frame -> ChatMessage? in
                        if case .message(let message) = frame, message.conversation == name, message.event != nil { message } else { nil }
                    }
                    #expect(event.sender == "auto-assign" && event.isPrivate == true)
                    assignees[name] = event.event?.assignee
                }
                await customer.leave()
            }
            #expect(assignees.count == 4)
            #expect(Set(assignees.values) == ["sam", "kim"], "lee is offline")
            #expect(assignees.values.filter { $0 == "sam" }.count == 2 && assignees.values.filter { $0 == "kim" }.count == 2)
            // Both at the limit: c5 stays unassigned.
            let c5 = try await sam.rosterEntry("c5") { $0.lastSeq >= 1 }
            try await Task.sleep(for: .milliseconds(500))
            let later = try await sam.framesUntilPong()
            #expect(c5.assignee == nil)
            #expect(!later.contains { frame in if case .message(let message) = frame { message.conversation == "c5" && message.event != nil } else { false } })
            for client in [sam, kim] { await client.leave() }
        }
    }
}

extension Client {
    /// Closes and waits for the close to finish, so that the next step sees the user gone.
    func leave() async {
        connection.close()
        _ = await connection.closed(timeout: frameWait)
    }

    func updated(timeout: Duration = frameWait) async throws -> ConversationUpdated {
        try await connection.receive(timeout: timeout) { if case .conversationUpdated(let update) = $0 { update } else { nil } }
    }

    func receipt(timeout: Duration = frameWait) async throws -> ReadReceipt {
        try await connection.receive(timeout: timeout) { if case .read(let receipt) = $0 { receipt } else { nil } }
    }

    func history(_ conversation: String?, before: Int? = nil, after: Int? = nil) async throws -> HistoryPage {
        let id = UUID().uuidString
        try connection.send(.history(HistoryRequest(conversation: conversation, before: before, after: after, limit: 50, requestId: id)))
        return try await connection.receive(timeout: frameWait) { if case .history(let page) = $0, page.requestId == id { page } else { nil } }
    }
}
