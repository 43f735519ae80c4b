import ChatClient
import ChatProtocol
@_spi(Testing) import ChatServerFixture
@_spi(Testing) import ChatStore
import Foundation
import TestProcesses
import Testing

/// Delivery through a real server and WebSocket clients, each case on SQLite and on PostgreSQL (`StoreBackend.withServer`,
/// which stops the server whatever happens).
@Suite("Conversations and delivery", .stopsServers)
struct ConversationTests {
    @Test("customer to agent to customer, with acks carrying id and sequence", arguments: StoreBackend.allCases)
    func roundTrip(on backend: StoreBackend) async throws {
        try await backend.withServer { server in
            let agent = try await server.join("sam", role: .agent)
            let customer = try await server.join("alice", role: .customer)
            _ = try await customer.synced()

            try customer.send("my order is late", clientId: "c-1")
            let ack = try await customer.ack()
            #expect(ack.clientId == "c-1")
            #expect(ack.seq == 1)
            #expect(ack.conversation == "alice")
            #expect(!ack.duplicate)
            let atAgent = try await agent.message()
            #expect(atAgent.text == "my order is late")
            #expect(atAgent.id == ack.id)
            #expect(atAgent.sender == "alice")
            #expect(atAgent.senderRole == .customer)

            try agent.send("let me check", clientId: "a-1", to: "alice")
            let agentAck = try await agent.ack()
            #expect(agentAck.seq == 2)
            let atCustomer = try await customer.message()
            #expect(atCustomer.text == "let me check")
            #expect(atCustomer.sender == "sam")
            #expect(atCustomer.seq == 2)
        }
    }

    @Test("bursts of large messages, each burst sent once the last is acknowledged, all get their acks", arguments: StoreBackend.allCases)
    func burstsAfterAcks(on backend: StoreBackend) async throws {
        // Large frames arrive spread out, some while the server is still acknowledging and fanning out the batch
        // before: the case where such a message once waited for a later message to be committed with it.
        try await backend.withServer(configure: { $0.messagesPerSecond = 10_000; $0.burst = 10_000 }) { server in
            _ = try await server.join("sam", role: .agent)
            let customer = try await server.join("alice", role: .customer)
            _ = try await customer.synced()
            let text = String(repeating: "x", count: 32_000)
            var acked = 0
            for round in 0..<30 {
                for index in 0..<8 { try customer.send(text, clientId: "c-\(round)-\(index)") }
                for _ in 0..<8 {
                    _ = try await customer.ack()
                    acked += 1
                }
            }
            #expect(acked == 240)
        }
    }

    @Test("a batch the database refuses gets store_failed for each message, naming it; the connection stays usable",
          arguments: StoreBackend.allCases)
    func storeFailure(on backend: StoreBackend) async throws {
        try await backend.withServer { server in
            let customer = try await server.join("alice", role: .customer)
            _ = try await customer.synced()
            try customer.send("stored", clientId: "c-1")
            #expect(try await customer.ack().seq == 1)
            // Break the store from outside, as a full or damaged disk would: the next commit fails.
            try await server.execute("ALTER TABLE messages RENAME TO messages_gone")
            try customer.send("refused", clientId: "c-2")
            let error = try await customer.error()
            #expect(error.code == .storeFailed)
            #expect(error.ref == "c-2")
            try await server.execute("ALTER TABLE messages_gone RENAME TO messages")
            try customer.send("refused", clientId: "c-2")
            #expect(try await customer.ack().seq == 2, "a resend with the same id is stored once the store works again")
        }
    }

    @Test("two agents: both see the customer; one agent's reply reaches the customer and the other agent", arguments: StoreBackend.allCases)
    func twoAgents(on backend: StoreBackend) async throws {
        try await backend.withServer { server in
            let sam = try await server.join("sam", role: .agent)
            let kim = try await server.join("kim", role: .agent)
            let customer = try await server.join("alice", role: .customer)
            // A second connection of the same customer sees their own messages too.
            let customerPhone = try await server.connect("alice", token: try await server.makeToken("alice", role: .customer), lastSeq: 0)

            try customer.send("hello?")
            _ = try await customer.ack()
            #expect(try await sam.message().text == "hello?")
            #expect(try await kim.message().text == "hello?")
            #expect(try await customerPhone.message().text == "hello?")

            try sam.send("hi alice", to: "alice")
            _ = try await sam.ack()
            #expect(try await customer.message().text == "hi alice")
            #expect(try await kim.message().text == "hi alice")
            // The sender's own connection gets the ack, not a copy.
            #expect(try await sam.framesUntilPong().contains { if case .message = $0 { true } else { false } } == false)
        }
    }

    @Test("a broadcast is stored in every customer's conversation and reaches online and offline customers", arguments: StoreBackend.allCases)
    func broadcast(on backend: StoreBackend) async throws {
        try await backend.withServer { server in
            let agent = try await server.join("sam", role: .agent)
            let online = try await server.join("alice", role: .customer)
            let offlineToken = try await server.makeToken("bob", role: .customer)
            try agent.connection.send(.broadcast(Broadcast(clientId: "b-1", text: "maintenance at 22:00")))
            let ack = try await agent.connection.receive(timeout: frameWait) { if case .broadcastAck(let ack) = $0 { ack } else { nil } }
            #expect(ack.conversations == 2)
            #expect(!ack.duplicate)
            let received = try await online.message()
            #expect(received.text == "maintenance at 22:00")
            #expect(received.broadcast)

            let bob = try await server.connect("bob", token: offlineToken, lastSeq: 0)
            let queued = try await bob.message()
            #expect(queued.text == "maintenance at 22:00")
            #expect(queued.conversation == "bob")

            // Resending the broadcast stores nothing new.
            try agent.connection.send(.broadcast(Broadcast(clientId: "b-1", text: "maintenance at 22:00")))
            let again = try await agent.connection.receive(timeout: frameWait) { if case .broadcastAck(let ack) = $0 { ack } else { nil } }
            #expect(again.duplicate)
            #expect(try await server.storage.messages.messageCount() == 2)

            // Customers may not broadcast.
            try online.connection.send(.broadcast(Broadcast(clientId: "b-2", text: "hi all")))
            #expect(try await online.error().code == .forbidden)
        }
    }

    @Test("an offline customer gets every missed reply on reconnect, in order, exactly once", arguments: StoreBackend.allCases)
    func offlineQueue(on backend: StoreBackend) async throws {
        try await backend.withServer { server in
            let token = try await server.makeToken("alice", role: .customer)
            let agent = try await server.join("sam", role: .agent)
            let first = try await server.connect("alice", token: token, lastSeq: 0)
            try first.send("anyone there?")
            let ack = try await first.ack()
            first.connection.close()
            _ = await first.connection.closed(timeout: frameWait)

            for index in 1...5 {
                try agent.send("reply \(index)", to: "alice")
                _ = try await agent.ack()
            }
            let again = try await server.connect("alice", token: token, lastSeq: ack.seq)
            var texts: [String] = []
            var seqs: [Int] = []
            var synced: Synced?
            while synced == nil {
                let incoming = try await again.connection.receive()
                switch incoming.frame {
                case .message(let message): texts.append(message.text); seqs.append(message.seq)
                case .synced(let value): synced = value
                default: break
                }
            }
            #expect(texts == (1...5).map { "reply \($0)" })
            #expect(seqs == Array(2...6))
            #expect(synced?.lastSeqs["alice"] == 6)
            // Nothing arrives twice after the replay.
            let after = try await again.framesUntilPong()
            #expect(!after.contains { if case .message = $0 { true } else { false } })
        }
    }

    @Test("messages sent while a client replays its backlog arrive once, after the backlog", arguments: StoreBackend.allCases)
    func liveDuringReplay(on backend: StoreBackend) async throws {
        try await backend.withServer(configure: { $0.messagesPerSecond = 10_000; $0.burst = 1000 }) { server in
            let token = try await server.makeToken("alice", role: .customer)
            let agent = try await server.join("sam", role: .agent)
            for index in 1...300 {
                try agent.send("old \(index)", to: "alice")
            }
            for _ in 1...300 { _ = try await agent.ack() }
            let replaying = ChatConnection(url: server.url, bearer: token)
            try replaying.send(.hello(Hello(lastSeq: 0)))
            for index in 1...20 { try agent.send("new \(index)", to: "alice") }
            var seqs: [Int] = []
            while seqs.count < 320 {
                let message = try await replaying.receive(timeout: frameWait) { if case .message(let message) = $0 { message } else { nil } }
                seqs.append(message.seq)
            }
            #expect(seqs == Array(1...320))
        }
    }

    @Test("a resend with the same client id returns the same ack and stores nothing new", arguments: StoreBackend.allCases)
    func idempotentResend(on backend: StoreBackend) async throws {
        try await backend.withServer { server in
            let agent = try await server.join("sam", role: .agent)
            let customer = try await server.join("alice", role: .customer)
            try customer.send("once", clientId: "same-id")
            let first = try await customer.ack()
            _ = try await agent.message()
            try customer.send("once", clientId: "same-id")
            let second = try await customer.ack()
            #expect(second.duplicate)
            #expect(second.id == first.id)
            #expect(second.seq == first.seq)
            #expect(try await server.storage.messages.messageCount() == 1)
            // The agent does not get it twice.
            #expect(!(try await agent.framesUntilPong()).contains { if case .message = $0 { true } else { false } })
        }
    }

    @Test("history pages before and after a sequence, bounded by the page limit", arguments: StoreBackend.allCases)
    func history(on backend: StoreBackend) async throws {
        try await backend.withServer(configure: { $0.historyPageMax = 10 }) { server in
            let customer = try await server.join("alice", role: .customer)
            for index in 1...25 { try customer.send("m\(index)") }
            for _ in 1...25 { _ = try await customer.ack() }

            func page(_ request: HistoryRequest) async throws -> HistoryPage {
                try customer.connection.send(.history(request))
                return try await customer.connection.receive(timeout: frameWait) { if case .history(let page) = $0 { page } else { nil } }
            }
            let newest = try await page(HistoryRequest(limit: 5, requestId: "r1"))
            #expect(newest.requestId == "r1")
            #expect(newest.messages.map(\.seq) == Array(21...25))
            #expect(newest.hasMore)
            let older = try await page(HistoryRequest(before: 21, limit: 50))
            #expect(older.messages.map(\.seq) == Array(11...20), "capped at the page maximum")
            let oldest = try await page(HistoryRequest(before: 3))
            #expect(oldest.messages.map(\.seq) == [1, 2])
            #expect(!oldest.hasMore)
            let forward = try await page(HistoryRequest(after: 22))
            #expect(forward.messages.map(\.text) == ["m23", "m24", "m25"])
            #expect(!forward.hasMore)
        }
    }

    @Test("roster: online state, unread counts per agent, read markers stored and shown live", arguments: StoreBackend.allCases)
    func rosterAndReadMarkers(on backend: StoreBackend) async throws {
        try await backend.withServer { server in
            let samToken = try await server.makeToken("sam", role: .agent)
            let sam = try await server.connect("sam", token: samToken)
            let kim = try await server.join("kim", role: .agent)
            let customer = try await server.join("alice", role: .customer)
            _ = try await sam.rosterEntry("alice") { $0.online }

            try customer.send("one")
            try customer.send("two")
            _ = try await customer.ack()
            let second = try await customer.ack()
            let unread = try await sam.rosterEntry("alice") { $0.unread == 2 }
            #expect(unread.lastMessage?.text == "two")
            #expect(unread.lastSeq == second.seq)

            // Sam reads: his count drops to zero, Kim's stays, the customer gets a read receipt.
            try sam.connection.send(.read(ReadMarker(conversation: "alice", seq: second.seq)))
            let read = try await sam.rosterEntry("alice") { $0.unread == 0 }
            #expect(read.readSeq == second.seq)
            let receipt = try await customer.connection.receive(timeout: frameWait) { if case .read(let receipt) = $0 { receipt } else { nil } }
            #expect(receipt.reader == "sam")
            #expect(receipt.seq == second.seq)
            let kimEntry = try await kim.rosterEntry("alice") { $0.unread == 2 }
            #expect(kimEntry.readSeq == 0)

            // Agent replies do not count as unread.
            try kim.send("hello", to: "alice")
            _ = try await kim.ack()
            _ = try await sam.rosterEntry("alice") { $0.lastSeq == 3 && $0.unread == 0 }

            // Disconnect shows offline; the marker survives a new connection.
            customer.connection.close()
            _ = try await sam.rosterEntry("alice") { !$0.online }
            let samAgain = try await server.connect("sam", token: samToken)
            let fresh = try await samAgain.roster()
            #expect(fresh.first { $0.customer == "alice" }?.unread == 0)
            #expect(fresh.first { $0.customer == "alice" }?.readSeq == second.seq)
        }
    }

    @Test("typing indicators are relayed live and never stored", arguments: StoreBackend.allCases)
    func typing(on backend: StoreBackend) async throws {
        try await backend.withServer { server in
            let agent = try await server.join("sam", role: .agent)
            let customer = try await server.join("alice", role: .customer)
            try customer.connection.send(.typing(Typing(active: true)))
            let notice = try await agent.connection.receive(timeout: frameWait) { if case .typing(let notice) = $0 { notice } else { nil } }
            #expect(notice.user == "alice")
            #expect(notice.conversation == "alice")
            #expect(notice.active)
            try agent.connection.send(.typing(Typing(conversation: "alice", active: false)))
            let back = try await customer.connection.receive(timeout: frameWait) { if case .typing(let notice) = $0 { notice } else { nil } }
            #expect(back.user == "sam")
            #expect(!back.active)
            #expect(try await server.storage.messages.messageCount() == 0)
        }
    }

    @Test("customers see how many agents are online", arguments: StoreBackend.allCases)
    func presence(on backend: StoreBackend) async throws {
        try await backend.withServer { server in
            let customer = try await server.join("alice", role: .customer)
            let initial = try await customer.connection.receive(timeout: frameWait) { if case .presence(let p) = $0 { p } else { nil } }
            #expect(initial.agentsOnline == 0)
            let agent = try await server.join("sam", role: .agent)
            let online = try await customer.connection.receive(timeout: frameWait) { if case .presence(let p) = $0 { p } else { nil } }
            #expect(online.agentsOnline == 1)
            agent.connection.close()
            let offline = try await customer.connection.receive(timeout: frameWait) { if case .presence(let p) = $0 { p } else { nil } }
            #expect(offline.agentsOnline == 0)
        }
    }
}
