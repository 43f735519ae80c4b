import ChatClient
import ChatProtocol
import ChatServerFixture
import Foundation
import TestProcesses
#if canImport(Glibc)
import Glibc
#endif
import Testing

/// Faults of the database under several nodes: liveness, revocations, events while PostgreSQL is slow.
extension ClusterTests {
    /// After an outage every node's last heartbeat is old. A node that judged the others as soon as its own heartbeat
    /// got through again declared them dead, for good, and their users offline; and heartbeats on each node's own
    /// clock made the judgement depend on clocks agreeing.
    @Test("PostgreSQL down for longer than the heartbeat expiry: no live node is declared dead; a node killed later still is")
    func livenessAfterOutage() async throws {
        let directory = TestServer.makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await PostgresCluster.with { cluster in
            let url = cluster.url()
            let tokens = try await tokens(url, [("alice", .customer), ("bob", .customer), ("sam", .agent), ("kim", .agent)])
            let b = try await nodeProcess(url, directory: directory)
            defer { b.kill() }
            let a = try await node(url)
            let sam = try await a.connect("sam", token: tokens["sam"] ?? "", lastSeqs: [:])
            let alice = ChatConnection(url: "ws://127.0.0.1:\(b.port)/ws", bearer: tokens["alice"] ?? "")
            _ = try await alice.hello(Hello(user: "alice", lastSeq: 0), timeout: frameWait)
            _ = try await sam.rosterEntry("alice") { $0.online }

            // Down for longer than the expiry (5 s), then back; every node's heartbeat gets through again, and two
            // expiries later whatever either node decided is settled.
            try await cluster.stopServer()
            try await Task.sleep(for: .seconds(8))
            try await cluster.startServer()
            try await Task.sleep(for: .seconds(12))

            // A's view: alice (on B) is online for an agent who connects now.
            let kim = try await a.connect("kim", token: tokens["kim"] ?? "", lastSeqs: [:])
            #expect(try await kim.rosterEntry("alice") { _ in true }.online, "node A declared node B dead")
            // B's view: a customer who connects now sees the agents on A.
            let bob = ChatConnection(url: "ws://127.0.0.1:\(b.port)/ws", bearer: tokens["bob"] ?? "")
            _ = try await bob.hello(Hello(user: "bob", lastSeq: 0), timeout: frameWait)
            let agents = try await bob.receive(timeout: frameWait) { frame -> Int? in
                if case .presence(let presence) = frame, presence.agentsOnline == 2 { presence.agentsOnline } else { nil }
            }
            #expect(agents == 2)

            // A real death afterwards is still noticed.
            b.kill()
            _ = try await sam.rosterEntry("alice", timeout: .seconds(20)) { !$0.online }
            await a.stop()
        }
    }

    @Test("a token revoked through chat-admin is cut on two nodes promptly; a revocation committed late with an old time is still seen")
    func revocationAcrossNodes() async throws {
        try await PostgresCluster.with { cluster in
            let url = cluster.url()
            let tokens = try await tokens(url, [("alice", .customer), ("bob", .customer)])
            let a = try await node(url)
            let b = try await node(url)
            var clients: [String: [Client]] = [:]
            for user in ["alice", "bob"] {
                for server in [a, b] { clients[user, default: []].append(try await server.connect(user, token: tokens[user] ?? "", lastSeq: 0)) }
            }

            let admin = try builtExecutable("chat-admin")
            let revoked = try await runTool(admin, ["tokens", "revoke", "alice", "--database", url, "--database-timeout",
                                                    "\(Int(databaseWait.components.seconds))"], timeout: .seconds(60))
            #expect(revoked.status == 0, "\(revoked.stderr)")
            let started = ContinuousClock.now
            for client in clients["alice"] ?? [] {
                #expect(await client.connection.closed(timeout: frameWait)?.code == CloseCode.sessionRevoked)
            }
            // The design target is within a second (the shipped poll is every 500 ms); the bound leaves room for a
            // loaded test machine, and is still far below what a missed revocation would take (forever).
            #expect(ContinuousClock.now - started < .seconds(3), "cut after \(ContinuousClock.now - started)")

            // A transaction that took its revocation time ten seconds before it committed: older than the newest
            // revocation the nodes have seen, and than their start.
            try await cluster.psql("""
                UPDATE sessions SET revoked_at = (extract(epoch FROM clock_timestamp()) * 1000)::bigint - 10000 WHERE username = 'bob'
                """)
            for client in clients["bob"] ?? [] {
                #expect(await client.connection.closed(timeout: frameWait)?.code == CloseCode.sessionRevoked)
            }
            await a.stop()
            await b.stop()
        }
    }

    /// Batches are deleted after a while; a node that had not read them by then (it was stopped, here with SIGSTOP)
    /// used to carry on after the gap as if nothing were missing.
    @Test("a node that fell behind by longer than batches are kept notices the gap, and its clients resume by sequence")
    func prunedBatchesNoticed() async throws {
        let directory = TestServer.makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await PostgresCluster.with { cluster in
            let url = cluster.url()
            let tokens = try await tokens(url, [("alice", .customer), ("sam", .agent)])
            let b = try await nodeProcess(url, directory: directory)
            defer { b.kill() }
            let a = try await node(url)
            let alice = try await a.connect("alice", token: tokens["alice"] ?? "", lastSeq: 0)
            let sam = ChatConnection(url: "ws://127.0.0.1:\(b.port)/ws", bearer: tokens["sam"] ?? "")
            _ = try await sam.hello(Hello(user: "sam", lastSeqs: [:]), timeout: frameWait)
            try alice.send("first", clientId: "c0")
            _ = try await alice.ack()
            #expect(try await sam.receive(timeout: frameWait) { if case .message(let message) = $0 { message.seq } else { nil } } == 1)

            kill(b.process.processIdentifier, SIGSTOP)
            // A query B sent just before it stopped still runs: let it finish before the batches it must not see exist.
            try await Task.sleep(for: .seconds(1))
            for index in 1...3 {
                try alice.send("while B sleeps \(index)", clientId: "c\(index)")
                _ = try await alice.ack()
            }
            try await cluster.psql("DELETE FROM delivery_batches")
            kill(b.process.processIdentifier, SIGCONT)
            try alice.send("after", clientId: "c4")
            _ = try await alice.ack()

            #expect(await sam.closed(timeout: frameWait)?.code == CloseCode.goingAway, "the gap went unnoticed")
            let resumed = ChatConnection(url: "ws://127.0.0.1:\(b.port)/ws", bearer: tokens["sam"] ?? "")
            _ = try await resumed.hello(Hello(user: "sam", lastSeqs: ["alice": 1]), timeout: frameWait)
            var seqs: [Int] = []
            while seqs.last != 5 {
                seqs.append(try await resumed.receive(timeout: frameWait) { if case .message(let message) = $0 { message.seq } else { nil } })
            }
            #expect(seqs == [2, 3, 4, 5])
            await a.stop()
        }
    }

    /// Typing, receipts and presence used to be sent by the frame loop (presence by the opening of a connection) and
    /// waited for: a send behind them waited as long as PostgreSQL held them up. Here the presence table is locked
    /// by another session, so every presence write waits for the lock.
    @Test("while PostgreSQL holds up presence, typing and receipts, connecting and sending are not held up")
    func eventsNeverHoldUpSends() async throws {
        try await PostgresCluster.with { cluster in
            let url = cluster.url()
            let tokens = try await tokens(url, [("alice", .customer), ("bob", .customer), ("sam", .agent)])
            let a = try await node(url)
            let b = try await node(url)
            let sam = try await b.connect("sam", token: tokens["sam"] ?? "", lastSeqs: [:])
            let alice = try await a.connect("alice", token: tokens["alice"] ?? "", lastSeq: 0)
            _ = try await sam.rosterEntry("alice") { $0.online }

            let held: Duration = .seconds(15)
            let holder = Task {
                try await cluster.psql("BEGIN; LOCK TABLE presence IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(\(held.components.seconds)); COMMIT")
            }
            defer { holder.cancel() }
            var locked = false
            for _ in 0..<200 where !locked {
                let count = try await cluster.psql("SELECT count(*) FROM pg_locks WHERE relation = 'presence'::regclass AND granted AND mode = 'AccessExclusiveLock'")
                locked = count.trimmingCharacters(in: .whitespacesAndNewlines) == "1"
                if !locked { try await Task.sleep(for: .milliseconds(50)) }
            }
            try #require(locked, "the presence table was not locked")
            let started = ContinuousClock.now
            try alice.connection.send(.typing(Typing(conversation: nil, active: true)))
            try alice.send("while presence is locked", clientId: "l1")
            _ = try await alice.ack()
            // Bob's connection is new here: his presence has to be recorded.
            let bob = try await a.connect("bob", token: tokens["bob"] ?? "", lastSeq: 0)
            try bob.send("hello", clientId: "b1")
            _ = try await bob.ack()
            try alice.connection.send(.read(ReadMarker(conversation: nil, seq: 1)))
            try alice.send("after a receipt", clientId: "l2")
            _ = try await alice.ack()
            // Far less than the lock is held, with room for a loaded machine.
            #expect(ContinuousClock.now - started < .seconds(8), "held up for \(ContinuousClock.now - started)")

            // Once the lock is gone, what waited reaches the other node.
            _ = try await sam.connection.receive(timeout: frameWait) { if case .typing(let notice) = $0, notice.user == "alice" { notice } else { nil } }
            _ = try await sam.rosterEntry("bob", timeout: held + frameWait) { $0.online }
            _ = try await holder.value
            await a.stop()
            await b.stop()
        }
    }
}
