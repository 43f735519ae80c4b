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

/// Two server nodes on one PostgreSQL database (a real one the test starts), with real WebSocket clients.
// A bound per test: a node that fails to stop (seen once, under a loaded full run, after PostgreSQL restarted) fails its
// test instead of holding the whole run until CI gives up.
@Suite("Several nodes on PostgreSQL", .serialized, .timeLimit(.minutes(3)), .stopsServers)
struct ClusterTests {
    private static let logger: Logger = {
        var logger = Logger(label: "test.cluster")
        logger.logLevel = .error
        return logger
    }()

    /// A node on `url`. Operations may take long on a loaded test machine; only the restart test needs the
    /// shipped deadline.
    func node(_ url: String, timeout: Duration = databaseWait) async throws -> TestServer {
        try await TestServer.start {
            $0.database = url
            $0.databaseTimeout = timeout
        }
    }

    /// A node as a child process on `url`, with its files in `directory`: for tests that kill or stop it.
    func nodeProcess(_ url: String, directory: String) async throws -> ServerProcess {
        let binary = try builtExecutable("chat-server")
        return try await offPool {
            try ServerProcess(binary: binary, directory: directory, arguments: ["--database", url, "--database-timeout", "\(Int(databaseWait.components.seconds))"])
        }
    }

    func tokens(_ url: String, _ users: [(String, Role)]) async throws -> [String: String] {
        try await PostgresDatabase.withDatabase(url: url, logger: Self.logger, deadline: databaseWait) { database in
            var tokens: [String: String] = [:]
            for (user, role) in users { tokens[user] = try await database.storage.tokens.create(username: user, role: role).token }
            return tokens
        }
    }

    @Test("a customer on one node and an agent on another: messages, resends, presence, rosters, typing, receipts and revocation")
    func twoNodes() async throws {
        try await PostgresCluster.with { cluster in
            let url = cluster.url()
            let a = try await node(url)
            let b = try await node(url)
            let tokens = try await tokens(url, [("alice", .customer), ("sam", .agent)])

            let alice = try await a.connect("alice", token: tokens["alice"] ?? "", lastSeq: 0)
            let sam = try await b.connect("sam", token: tokens["sam"] ?? "", lastSeqs: [:])
            // Presence crosses nodes: alice (on A) learns that an agent is online (on B); sam's roster shows her online.
            let presence = try await alice.connection.receive(timeout: frameWait) { frame -> Presence? in
                if case .presence(let presence) = frame, presence.agentsOnline == 1 { presence } else { nil }
            }
            #expect(presence.agentsOnline == 1)
            _ = try await sam.rosterEntry("alice") { $0.online }

            // A message stored through A reaches the agent on B, in order, with its sequence number.
            try alice.send("hello from A", clientId: "c1")
            let ack = try await alice.ack()
            let received = try await sam.message()
            #expect(received.text == "hello from A" && received.seq == ack.seq && received.seq == 1)
            let unread = try await sam.rosterEntry("alice") { $0.unread == 1 }
            #expect(unread.lastMessage?.text == "hello from A")

            // The reply through B reaches A; the sender gets an ack, not its own message.
            try sam.send("hi from B", clientId: "s1", to: "alice")
            let reply = try await alice.message()
            #expect(reply.text == "hi from B" && reply.seq == 2)
            #expect(try await sam.ack().seq == 2)
            let meanwhile = try await sam.framesUntilPong()
            #expect(!meanwhile.contains { if case .message = $0 { true } else { false } }, "the sender got its own message")

            // Resending c1 through the other node stores and delivers nothing new.
            let aliceOnB = try await b.connect("alice", token: tokens["alice"] ?? "", lastSeq: 2)
            try aliceOnB.send("hello from A", clientId: "c1")
            let duplicate = try await aliceOnB.ack()
            #expect(duplicate.duplicate == true && duplicate.seq == 1)
            let after = try await sam.framesUntilPong()
            #expect(!after.contains { if case .message = $0 { true } else { false } }, "a resend was delivered again")

            // Typing and read receipts cross nodes.
            try sam.connection.send(.typing(Typing(conversation: "alice", active: true)))
            let typing = try await alice.connection.receive(timeout: frameWait) { if case .typing(let notice) = $0 { notice } else { nil } }
            #expect(typing.user == "sam" && typing.active)
            try alice.connection.send(.read(ReadMarker(conversation: nil, seq: 2)))
            let receipt = try await sam.connection.receive(timeout: frameWait) { if case .read(let receipt) = $0 { receipt } else { nil } }
            #expect(receipt.reader == "alice" && receipt.seq == 2)

            // Offline resync by lastSeq through the other node.
            let backlog = try await b.connect("alice", token: tokens["alice"] ?? "", lastSeq: 0)
            #expect(try await backlog.message().seq == 1)
            #expect(try await backlog.message().seq == 2)

            // A revoked token's sessions are cut on every node (each node watches the tokens table; see
            // AuthenticationTests for the bound on the delay).
            _ = try await PostgresDatabase.withDatabase(url: url, logger: Self.logger, deadline: databaseWait) { try await $0.storage.tokens.revoke(username: "alice") }
            for client in [alice, aliceOnB, backlog] {
                let info = await client.connection.closed(timeout: frameWait)
                #expect(info?.code == CloseCode.sessionRevoked)
            }
            await a.stop()
            await b.stop()
        }
    }

    /// The hardest case for sequence numbers: a customer on A and agents on B and C write to one conversation at
    /// the same time. Each of them sees every message exactly once, and together the numbers are 1...N with no gap.
    /// A broadcast from C reaches customers on A and B.
    @Test("three nodes writing one conversation at once: sequences unique and gap-free, every message delivered once; broadcast")
    func threeNodesOneConversation() async throws {
        try await PostgresCluster.with { cluster in
            let url = cluster.url()
            let tokens = try await tokens(url, [("alice", .customer), ("bob", .customer), ("sam", .agent), ("kim", .agent)])
            var nodes: [TestServer] = []
            for _ in 0..<3 { nodes.append(try await node(url)) }
            let alice = try await nodes[0].connect("alice", token: tokens["alice"] ?? "", lastSeq: 0)
            let sam = try await nodes[1].connect("sam", token: tokens["sam"] ?? "", lastSeqs: [:])
            let kim = try await nodes[2].connect("kim", token: tokens["kim"] ?? "", lastSeqs: [:])
            let bob = try await nodes[1].connect("bob", token: tokens["bob"] ?? "", lastSeq: 0)
            for agent in [sam, kim] { _ = try await agent.rosterEntry("alice") { $0.online } }

            let perClient = 30
            let writers = [("alice", alice), ("sam", sam), ("kim", kim)]
            for index in 0..<perClient {
                for (name, client) in writers {
                    try client.send("\(name) \(index)", clientId: "\(name)-\(index)", to: name == "alice" ? nil : "alice")
                }
            }
            // Who stored each number (from the acks), and who each writer saw send each number (from messages).
            var owner: [Int: String] = [:]
            var seenBy: [String: [Int: String]] = [:]
            for (name, client) in writers {
                var acks = 0
                var seen: [Int: String] = [:]
                while acks < perClient || seen.count < perClient * 2 {
                    switch try await client.connection.receive(timeout: frameWait).frame {
                    case .ack(let ack)?:
                        acks += 1
                        #expect(owner[ack.seq] == nil, "seq \(ack.seq) acknowledged to \(owner[ack.seq] ?? "") and \(name)")
                        owner[ack.seq] = name
                    case .message(let message)? where message.conversation == "alice":
                        #expect(seen[message.seq] == nil, "\(name) got seq \(message.seq) twice")
                        seen[message.seq] = message.sender
                    default: break
                    }
                }
                seenBy[name] = seen
            }
            #expect(Set(owner.keys) == Set(1...(perClient * 3)), "numbers unique and gap-free")
            for (name, _) in writers {
                let expected = owner.filter { $0.value != name }
                #expect(seenBy[name] == expected, "\(name) saw every other message once, under the number its sender was told")
            }

            try kim.connection.send(.broadcast(Broadcast(clientId: "all-1", text: "maintenance tonight")))
            for (customer, client) in [("alice", alice), ("bob", bob)] {
                let message = try await client.connection.receive(timeout: frameWait) { frame -> ChatMessage? in
                    if case .message(let message) = frame, message.broadcast == true { message } else { nil }
                }
                #expect(message.text == "maintenance tonight" && message.conversation == customer)
            }
            for node in nodes { await node.stop() }
        }
    }

    @Test("a node killed with SIGKILL: its users go offline on the others, no acknowledged message is lost, clients resume elsewhere")
    func nodeKilled() async throws {
        let directory = TestServer.makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await PostgresCluster.with { cluster in
            let url = cluster.url()
            let tokens = try await tokens(url, [("alice", .customer), ("sam", .agent)])
            let doomed = try await nodeProcess(url, directory: directory)
            defer { doomed.kill() }
            let survivor = try await node(url)
            let sam = try await survivor.connect("sam", token: tokens["sam"] ?? "", lastSeqs: [:])
            let alice = ChatConnection(url: "ws://127.0.0.1:\(doomed.port)/ws", bearer: tokens["alice"] ?? "")
            _ = try await alice.hello(Hello(user: "alice", lastSeq: 0), timeout: frameWait)
            _ = try await sam.rosterEntry("alice") { $0.online }
            for index in 1...20 { try alice.send(.send(Send(clientId: "m\(index)", text: "message \(index)"))) }
            var acked: [Int] = []
            while acked.count < 20 {
                acked.append(try await alice.receive(timeout: frameWait) { if case .ack(let ack) = $0 { ack.seq } else { nil } })
            }
            #expect(acked.sorted() == Array(1...20))

            // Forty more, and the node dies while they are on their way: some stored and acknowledged, some not.
            for index in 21...60 { try alice.send(.send(Send(clientId: "m\(index)", text: "message \(index)"))) }
            var acknowledged: [Int] = [try await alice.receive(timeout: frameWait) { if case .ack(let ack) = $0 { ack.seq } else { nil } }]
            doomed.kill()
            // Every ack the client got before the node died counts: each of those messages must have survived.
            let ackSeq = { (frame: ServerFrame) -> Int? in if case .ack(let ack) = frame { ack.seq } else { nil } }
            while let seq = try? await alice.receive(timeout: .milliseconds(500), ackSeq) { acknowledged.append(seq) }
            // The dead node said nothing: its heartbeat expires, and alice goes offline on the survivor.
            let offline = try await sam.rosterEntry("alice", timeout: .seconds(20)) { !$0.online }

            // Alice resumes on the survivor: every stored message is there, in the order she sent them.
            let resumed = try await survivor.connect("alice", token: tokens["alice"] ?? "", lastSeq: 0)
            var replayed: [ChatMessage] = []
            replay: while true {
                switch try await resumed.connection.receive(timeout: frameWait).frame {
                case .message(let message)?: replayed.append(message)
                case .synced?: break replay
                default: continue
                }
            }
            let stored = replayed.count
            #expect((21...60).contains(stored) && offline.lastSeq == stored)
            #expect(acknowledged.allSatisfy { $0 <= stored }, "acknowledged \(acknowledged), stored \(stored)")
            #expect(replayed.map(\.seq) == Array(1...stored))
            #expect(replayed.map(\.clientId) == (1...stored).map { "m\($0)" })
            // She resends what she has no ack for: what the dead node stored is a duplicate, the rest is new.
            for index in 21...60 { try resumed.send("message \(index)", clientId: "m\(index)") }
            var acks: [Ack] = []
            while acks.count < 40 { acks.append(try await resumed.ack()) }
            #expect(acks.map(\.clientId) == (21...60).map { "m\($0)" })
            #expect(acks.map(\.seq) == Array(21...60), "stored once each, no gap")
            #expect(acks.map { $0.duplicate == true } == (21...60).map { $0 <= stored })
            await survivor.stop()
        }
    }

    @Test("PostgreSQL stops: sends get store_failed promptly, the server keeps running, and works again when it is back")
    func databaseRestarts() async throws {
        try await PostgresCluster.with { cluster in
            let url = cluster.url()
            let tokens = try await tokens(url, [("alice", .customer)])
            let server = try await node(url, timeout: ServerConfiguration().databaseTimeout)
            let alice = try await server.connect("alice", token: tokens["alice"] ?? "", lastSeq: 0)
            try alice.send("before", clientId: "b1")
            #expect(try await alice.ack().seq == 1)

            try await cluster.stopServer()
            let started = ContinuousClock.now
            try alice.send("while down", clientId: "d1")
            let error = try await alice.error(timeout: .seconds(30))
            #expect(error.code == .storeFailed && error.ref == "d1")
            #expect(ContinuousClock.now - started < .seconds(20), "store_failed came after \(ContinuousClock.now - started)")
            let health = try await server.get("/healthz")
            #expect(health.status == 200)

            try await cluster.startServer()
            // The client resends with the same clientId, as it is told to; the pool reconnects by itself.
            var stored: Ack?
            for _ in 0..<20 where stored == nil {
                try alice.send("while down", clientId: "d1")
                let answer = try await alice.connection.receive(timeout: frameWait) { frame -> Ack?? in
                    switch frame {
                    case .ack(let ack): .some(ack)
                    case .error(let error) where error.code == .storeFailed: .some(nil)
                    default: nil
                    }
                }
                stored = answer
                if stored == nil { try await Task.sleep(for: .milliseconds(500)) }
            }
            #expect(stored?.seq == 2 && stored?.duplicate != true)
            await server.stop()
        }
    }

    @Test("chat-admin --database: tokens created, imported, listed, exported and revoked, canned replies and the report on PostgreSQL; a bad URL is one line")
    func adminOnPostgres() async throws {
        try await PostgresCluster.with { cluster in
            let url = cluster.url()
            let admin = try builtExecutable("chat-admin")
            let directory = TestServer.makeDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            func run(_ arguments: [String]) async throws -> ToolResult {
                try await runTool(admin, arguments + ["--database", url, "--database-timeout", "\(Int(databaseWait.components.seconds))", "--data-dir", directory], timeout: .seconds(60))
            }
            let created = try await run(["tokens", "create", "alice", "--role", "customer"])
            #expect(created.status == 0, "\(created.stderr)")
            let token = created.output.trimmingCharacters(in: .whitespacesAndNewlines)
            let listed = try await run(["tokens", "list", "--json"])
            #expect(listed.output.contains("\"alice\"") && !listed.output.contains(token))
            #expect(!FileManager.default.fileExists(atPath: DataDirectory(directory).databasePath), "SQLite was used")

            // The original system's tokens: imported once (twice changes nothing), a role conflict skipped.
            let legacy = directory + "/session_tokens.db"
            let file = try LegacySessionsFile(creatingAt: legacy)
            try file.add(username: "bob", token: "bob-legacy-token-0123456789", role: .customer)
            try file.add(username: "alice", token: "alice-legacy-token-0123456789", role: .agent)
            try file.add(username: "kim", token: "kim-legacy-token-0123456789", role: .agent)
            let imported = try await run(["tokens", "import", legacy, "--agent", "kim", "--agent", "alice", "--json"])
            #expect(imported.status == 0, "\(imported.stderr)")
            let first = try JSONDecoder().decode(LegacyImportReport.self, from: Data(imported.output.utf8))
            #expect(first.imported == ["bob", "kim"] && first.skipped.map(\.user) == ["alice"])
            #expect(first.skipped.first?.reason.contains("already has customer tokens") == true)
            let again = try await run(["tokens", "import", legacy, "--agent", "kim", "--agent", "alice", "--json"])
            let second = try JSONDecoder().decode(LegacyImportReport.self, from: Data(again.output.utf8))
            #expect(second.imported.isEmpty && second.alreadyPresent == ["bob", "kim"])

            let server = try await node(url)
            let kim = try await server.connect("kim", token: "kim-legacy-token-0123456789", lastSeqs: [:])
            #expect(kim.welcome.role == .agent)
            let alice = try await server.connect("alice", token: token, lastSeq: 0)
            try alice.send("on postgres", clientId: "p1")
            _ = try await alice.ack()
            let export = try await run(["export", "alice", "--format", "json"])
            #expect(export.status == 0 && export.output.contains("on postgres"), "\(export.stderr)")

            // Canned replies and the report on PostgreSQL: the node picks up the reply; kim answers and resolves.
            #expect(try await run(["canned", "add", "thanks", "Thanks {customer}!"]).status == 0)
            let canned = try await kim.connection.receive(timeout: frameWait) { frame -> CannedReplies? in
                if case .cannedReplies(let list) = frame, !list.replies.isEmpty { list } else { nil }
            }
            #expect(canned.replies == [CannedReply(name: "thanks", text: "Thanks {customer}!")])
            try kim.send("answer on postgres", clientId: "k1", to: "alice")
            _ = try await kim.ack()
            try kim.connection.send(.setStatus(SetStatus(requestId: "done", conversation: "alice", status: .resolved)))
            _ = try await kim.connection.receive(timeout: frameWait) { if case .conversationUpdated(let update) = $0 { update } else { nil } }
            let report = try await run(["report", "--since", "1h", "--json"])
            #expect(report.status == 0, "\(report.stderr)")
            let object = try JSONSerialization.jsonObject(with: Data(report.output.utf8)) as? [String: Any]
            let kimLine = (object?["agents"] as? [[String: Any]])?.first { $0["agent"] as? String == "kim" }
            #expect(kimLine?["messages"] as? Int == 1 && kimLine?["conversations"] as? Int == 1)
            #expect((kimLine?["firstResponse"] as? [String: Any])?["count"] as? Int == 1)
            #expect((kimLine?["resolution"] as? [String: Any])?["count"] as? Int == 1)
            let revoked = try await run(["tokens", "revoke", "alice"])
            #expect(revoked.status == 0 && revoked.output.contains("revoked 1 token"))
            #expect(await alice.connection.closed(timeout: frameWait)?.code == CloseCode.sessionRevoked)
            await server.stop()

            let bad = try await runTool(admin, ["tokens", "list", "--database", "postgres://chat:hunter2@127.0.0.1:\(try freeLoopbackPort())/chat"],
                                        timeout: .seconds(60))
            #expect(bad.status == 1)
            #expect(bad.stderr.split(separator: "\n").count == 1 && !bad.stderr.contains("hunter2"), "\(bad.stderr)")
        }
    }

    @Test("a node whose listening connection is cut catches up: the messages committed meanwhile arrive, once, in order")
    func listenerCut() async throws {
        try await PostgresCluster.with { cluster in
            let url = cluster.url()
            let tokens = try await tokens(url, [("alice", .customer), ("sam", .agent)])
            let a = try await node(url)
            let b = try await node(url)
            let alice = try await a.connect("alice", token: tokens["alice"] ?? "", lastSeq: 0)
            let sam = try await b.connect("sam", token: tokens["sam"] ?? "", lastSeqs: [:])
            try alice.send("first", clientId: "c0")
            #expect(try await sam.message().seq == 1)
            // Cut every listening connection (both nodes'); messages committed now are announced to nobody.
            try await cluster.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%'")
            for index in 1...5 {
                try alice.send("while cut \(index)", clientId: "c\(index)")
                _ = try await alice.ack()
            }
            var seqs: [Int] = []
            while seqs.count < 5 { seqs.append(try await sam.message().seq) }
            #expect(seqs == [2, 3, 4, 5, 6])
            let extra = try await sam.framesUntilPong()
            #expect(!extra.contains { if case .message = $0 { true } else { false } }, "a message was delivered twice")
            await a.stop()
            await b.stop()
        }
    }
}
