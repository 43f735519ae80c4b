import ChatProtocol
import ChatServer
@_spi(Testing) import ChatServerFixture
@_spi(Testing) import ChatStore
@testable import ChatStorePostgres
import Foundation
import Logging
import TestProcesses
import Testing

/// The database a store test runs on: one body, both backends.
enum StoreBackend: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite, postgres

    var testDescription: String { rawValue }

    /// Runs `body` with this backend's stores on a new, empty database (a temporary SQLite file, or a throwaway
    /// PostgreSQL server), and removes it after.
    func withStorage(logger: Logger, _ body: @Sendable (ChatStorage) async throws -> Void) async throws {
        switch self {
        case .sqlite:
            let directory = TestServer.makeDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            try await body(try ChatDatabase(path: DataDirectory(directory).databasePath).storage)
        case .postgres:
            try await PostgresCluster.with { cluster in
                try await PostgresDatabase.withDatabase(url: cluster.url(), logger: logger, deadline: databaseWait) { try await body($0.storage) }
            }
        }
    }
}

extension StoreBackend {
    typealias MakeToken = @Sendable (String, Role) async throws -> String

    /// `nodes` servers on one new database of this backend (for SQLite, one server given `nodes` times) with a way
    /// to make tokens in it; every server is stopped after, whether `body` throws or not.
    func withServers(nodes: Int = 1, configure: @escaping @Sendable (inout ServerConfiguration) -> Void = { _ in },
                     _ body: @escaping @Sendable ([TestServer], MakeToken) async throws -> Void) async throws {
        try await withServerStorage(nodes: nodes, configure: configure) { servers, storage, _ in
            try await body(servers) { user, role in try await storage.tokens.create(username: user, role: role).token }
        }
    }

    /// Runs SQL on a test's database from outside the server (RawSQLite, or psql), to break it as a fault would.
    typealias RawSQL = @Sendable (String) async throws -> Void

    /// `nodes` servers on one new database of this backend (for SQLite, one server given `nodes` times) with that
    /// database's stores, opened beside the servers as `chat-admin` would, and a way to run raw SQL on it; every
    /// server is stopped after, whether `body` throws or not.
    func withServerStorage(nodes: Int = 1, configure: @escaping @Sendable (inout ServerConfiguration) -> Void = { _ in },
                           _ body: @escaping @Sendable ([TestServer], ChatStorage, @escaping RawSQL) async throws -> Void) async throws {
        switch self {
        case .sqlite:
            let server = try await TestServer.start(configure: configure)
            do {
                let raw = try server.sqlite()
                try await body(Array(repeating: server, count: nodes), try server.database().storage) { try await raw.execute($0) }
            } catch {
                await server.stop()
                throw error
            }
            await server.stop()
        case .postgres:
            try await PostgresCluster.with { cluster in
                let url = cluster.url()
                var servers: [TestServer] = []
                do {
                    for _ in 0..<nodes {
                        servers.append(try await TestServer.start {
                            $0.database = url
                            $0.databaseTimeout = databaseWait
                            configure(&$0)
                        })
                    }
                    let started = servers
                    try await PostgresDatabase.withDatabase(url: url, logger: Logger(label: "test.servers"), deadline: databaseWait) { database in
                        try await body(started, database.storage) { _ = try await cluster.psql($0) }
                    }
                } catch {
                    for server in servers { await server.stop() }
                    throw error
                }
                for server in servers { await server.stop() }
            }
        }
    }
}

extension StoreBackend {
    /// Two nodes' stores on one new database: two SQLite databases opened on one file, or two PostgreSQL pools.
    func withTwoNodes(logger: Logger, _ body: @Sendable (ChatStorage, ChatStorage) async throws -> Void) async throws {
        switch self {
        case .sqlite:
            let directory = TestServer.makeDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let path = DataDirectory(directory).databasePath
            try await body(try ChatDatabase(path: path).storage, try ChatDatabase(path: path).storage)
        case .postgres:
            try await PostgresCluster.with { cluster in
                let url = cluster.url()
                try await PostgresDatabase.withDatabase(url: url, logger: logger, deadline: databaseWait) { a in
                    try await PostgresDatabase.withDatabase(url: url, logger: logger, deadline: databaseWait) { b in
                        try await body(a.storage, b.storage)
                    }
                }
            }
        }
    }
}

/// The stores on both backends, and what only PostgreSQL has, against a real server the test starts (initdb into a
/// temporary directory) and stops.
@Suite("Stores on SQLite and PostgreSQL", .serialized, .stopsServers)
struct PostgresStoreTests {
    private static let logger: Logger = {
        var logger = Logger(label: "test.postgres")
        logger.logLevel = .error  // postgres-nio logs each failed connection attempt
        return logger
    }()

    private static func message(_ sender: String, _ role: Role, _ id: String, to customer: String, _ text: String? = nil) -> OutgoingMessage {
        OutgoingMessage(sender: sender, senderRole: role, clientId: id, text: text ?? id, target: .conversation(customer))
    }

    /// A batch is planned as a whole (one resend check, one insert): resends within it, of earlier batches, of
    /// broadcasts, and a broadcast reusing a direct message's client id must come out as one message at a time would.
    @Test("resends within a batch and across batches, broadcast resends, and a broadcast reusing a client id", arguments: StoreBackend.allCases)
    func resendsInBatches(on backend: StoreBackend) async throws {
        try await backend.withStorage(logger: Self.logger) { storage in
            for customer in ["alice", "bob"] { _ = try await storage.tokens.create(username: customer, role: .customer) }
            _ = try await storage.tokens.create(username: "sam", role: .agent)
            func broadcast(_ id: String) -> OutgoingMessage {
                OutgoingMessage(sender: "sam", senderRole: .agent, clientId: id, text: id, target: .allCustomers)
            }
            let first = try await storage.messages.commit([
                Self.message("alice", .customer, "a1", to: "alice"),
                Self.message("sam", .agent, "s1", to: "bob"),
                broadcast("b1"),
                broadcast("b1"),
                Self.message("bob", .customer, "x", to: "bob"),
                Self.message("bob", .customer, "x", to: "bob", "again in the same batch"),
            ])
            #expect(first.map(Self.summary) == ["alice#1", "bob#1", "alice#2 bob#2", "alice#2 bob#2 (again)", "bob#3", "bob#3 (again)"])

            let second = try await storage.messages.commit([
                Self.message("bob", .customer, "x", to: "bob", "a later resend"),
                broadcast("b1"),
                broadcast("s1"),  // bob already has sam's s1: only alice gets this one
                Self.message("alice", .customer, "a2", to: "alice"),
            ])
            #expect(second.map(Self.summary) == ["bob#3 (again)", "alice#2 bob#2 (again)", "alice#3", "alice#4"])
            guard case .stored(let resent, _) = second[0], case .stored(let copies, _) = second[1] else { return }
            #expect(resent.first?.text == "x" && copies.allSatisfy(\.broadcast))
            #expect(try await storage.messages.transcript(customer: "bob").map(\.text) == ["s1", "b1", "x"])
            #expect(try await storage.messages.messageCount() == 7)
        }
    }

    private static func summary(_ outcome: CommitOutcome) -> String {
        switch outcome {
        case .stored(let messages, let duplicate):
            messages.map { "\($0.conversation)#\($0.seq)" }.joined(separator: " ") + (duplicate ? " (again)" : "")
        case .rejected(let code, _): "rejected \(code)"
        }
    }

    @Test("messages, duplicates, history, summaries, read markers and tokens", arguments: StoreBackend.allCases)
    func sameBehaviour(on backend: StoreBackend) async throws {
        try await backend.withStorage(logger: Self.logger) { storage in
            do {
                let alice = try await storage.tokens.create(username: "alice", role: .customer)
                _ = try await storage.tokens.create(username: "sam", role: .agent)
                // One role per user.
                await #expect(throws: StoreError.roleConflict(user: "alice", existing: "customer")) {
                    _ = try await storage.tokens.create(username: "alice", role: .agent)
                }
                guard case .success(let record) = try await storage.tokens.authenticate(token: alice.token, username: "alice") else {
                    Issue.record("token refused")
                    return
                }
                #expect(record.username == "alice" && record.role == .customer)
                #expect(try await storage.tokens.authenticate(token: alice.token, username: "bob") == .failure(.wrongUser))
                #expect(try await storage.tokens.authenticate(token: "nope") == .failure(.unknownToken))

                let outcomes = try await storage.messages.commit([
                    Self.message("alice", .customer, "a1", to: "alice"),
                    Self.message("sam", .agent, "s1", to: "alice"),
                    Self.message("alice", .customer, "a1", to: "alice", "resent"),
                    Self.message("sam", .agent, "s2", to: "nobody"),
                ])
                guard case .stored(let first, duplicate: false) = outcomes[0], case .stored(let second, duplicate: false) = outcomes[1],
                      case .stored(let again, duplicate: true) = outcomes[2] else {
                    Issue.record("unexpected outcomes \(outcomes)")
                    return
                }
                #expect(first.map(\.seq) == [1] && second.map(\.seq) == [2] && again.map(\.seq) == [1] && again.first?.text == "a1")
                #expect(outcomes[3] == .rejected(.unknownConversation, "no customer named nobody"))

                let broadcast = try await storage.messages.commit([OutgoingMessage(sender: "sam", senderRole: .agent, clientId: "b1",
                                                                                   text: "hello all", target: .allCustomers)])
                guard case .stored(let copies, duplicate: false) = broadcast.first else { Issue.record("\(broadcast)"); return }
                #expect(copies.map(\.conversation) == ["alice"] && copies.map(\.seq) == [3] && copies.allSatisfy(\.broadcast))

                let page = try await storage.messages.history(customer: "alice", limit: 2)
                #expect(page.messages.map(\.seq) == [2, 3] && page.hasMore)
                let older = try await storage.messages.history(customer: "alice", before: 2, after: nil, limit: 10, audience: .agents)
                #expect(older.messages.map(\.text) == ["a1"] && !older.hasMore)
                let summary = try await storage.messages.conversationSummaries()
                #expect(summary.map(\.customer) == ["alice"])
                #expect(summary.first?.state == ConversationState(lastSeq: 3, customerMessages: 1))
                #expect(summary.first?.lastMessage?.text == "hello all")
                #expect(try await storage.messages.customers() == ["alice"])
                #expect(try await storage.messages.messageCount() == 3)
                #expect(try await storage.messages.transcript(customer: "alice").map(\.seq) == [1, 2, 3])
                await #expect(throws: StoreError.notFound("customer sam (sam is an agent)")) {
                    _ = try await storage.messages.transcript(customer: "sam")
                }

                let marker = try await storage.readMarkers.markRead(user: "sam", customer: "alice", seq: 99, audience: .agents)
                #expect(marker == StoredReadMarker(user: "sam", customer: "alice", seq: 3, customerMessagesRead: 1))
                let back = try await storage.readMarkers.markRead(user: "sam", customer: "alice", seq: 1, audience: .agents)
                #expect(back?.seq == 3, "a marker never moves back")
                #expect(try await storage.readMarkers.markRead(user: "sam", customer: "nobody", seq: 1, audience: .agents) == nil)
                #expect(try await storage.readMarkers.readMarkers() == [StoredReadMarker(user: "sam", customer: "alice", seq: 3,
                                                                                        customerMessagesRead: 1)])

                let rotated = try await storage.tokens.rotate(username: "alice")
                #expect(rotated.revoked.map(\.id) == [record.id])
                #expect(try await storage.tokens.authenticate(token: alice.token) == .failure(.revoked))
                let revoked = try await storage.tokens.revokedSessions(since: 0)
                #expect(revoked.ids == [record.id])
                #expect(try await storage.tokens.list().map(\.username) == ["alice", "sam", "alice"])
            }
        }
    }

    /// Old batches are deleted; the numbers of new ones must still grow, or nodes that delivered up to N ignore them.
    @Test("batch numbers keep growing after every old batch is pruned; each commit is announced once")
    func batchNumbersOutlivePruning() async throws {
        try await PostgresCluster.with { cluster in
            try await PostgresDatabase.withDatabase(url: cluster.url(), logger: Self.logger, deadline: databaseWait) { database in
                _ = try await database.storage.tokens.create(username: "alice", role: .customer)
                let fanOut = PostgresFanOut(database: database)
                for id in ["a1", "a2"] { _ = try await database.storage.messages.commit([Self.message("alice", .customer, id, to: "alice")]) }
                let before = try await fanOut.newestBatch()
                #expect(before == 2)
                try await fanOut.prune(nodesSilentFor: .seconds(1), batchesOlderThan: .seconds(1), ahead: .seconds(60))
                #expect(try await fanOut.batches(after: 0).isEmpty)
                _ = try await database.storage.messages.commit([Self.message("alice", .customer, "a3", to: "alice")])
                let after = try await fanOut.batches(after: before)
                #expect(after.map(\.number) == [before + 1] && after.first?.messageIds.count == 1)
                #expect(try await fanOut.newestBatch() == before + 1)
            }
        }
    }

    /// Two pools on one database are two nodes: writers that do not share any memory.
    @Test("writers on two nodes at once: every conversation's sequence numbers unique and gap-free")
    func concurrentWritersOnTwoNodes() async throws {
        try await PostgresCluster.with { cluster in
            let url = cluster.url()
            try await PostgresDatabase.withDatabase(url: url, logger: Self.logger, deadline: databaseWait) { first in
                try await PostgresDatabase.withDatabase(url: url, logger: Self.logger, deadline: databaseWait) { second in
                    for customer in ["alice", "bob"] { _ = try await first.storage.tokens.create(username: customer, role: .customer) }
                    let stores = [first.storage.messages, second.storage.messages]
                    // 4 writers (2 per node), 25 batches each, each batch writing to both conversations in opposite
                    // orders, so lock order matters.
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for writer in 0..<4 {
                            let store = stores[writer % 2]
                            group.addTask {
                                for round in 0..<25 {
                                    let customers = writer % 2 == 0 ? ["alice", "bob"] : ["bob", "alice"]
                                    let batch = customers.map { customer in
                                        OutgoingMessage(sender: "w\(writer)", senderRole: .agent, clientId: "\(writer)-\(round)-\(customer)",
                                                        text: "x", target: .conversation(customer))
                                    }
                                    let outcomes = try await store.commit(batch)
                                    for outcome in outcomes {
                                        guard case .stored(_, duplicate: false) = outcome else {
                                            throw TestFailure("unexpected outcome \(outcome)")
                                        }
                                    }
                                }
                            }
                        }
                        try await group.waitForAll()
                    }
                    for customer in ["alice", "bob"] {
                        let seqs = try await first.storage.messages.transcript(customer: customer).map(\.seq)
                        #expect(seqs == Array(1...100), "\(customer): \(seqs.count) messages")
                    }
                    let summaries = try await second.storage.messages.conversationSummaries()
                    #expect(summaries.map(\.state.lastSeq) == [100, 100])
                    // Every batch was numbered once, in commit order, with its own messages.
                    let batches = try await PostgresFanOut(database: first).batches(after: 0, limit: 1000)
                    #expect(batches.map(\.number) == Array(1...100).map(Int64.init))
                    #expect(Set(batches.flatMap(\.messageIds)).count == 200)
                }
            }
        }
    }

    @Test("bad URLs and an unreachable database are one clear error, without the password; a newer schema is refused")
    func badLocations() async throws {
        for (url, reason) in [("postgres://127.0.0.1/chat", "no user"), ("postgres://chat@127.0.0.1", "no database name"),
                              ("mysql://chat@host/db", "not a postgres:// URL"), ("postgres://chat@127.0.0.1/chat?sslmode=x", "unknown option")] {
            do {
                _ = try PostgresLocation(url: url)
                Issue.record("\(url) accepted")
            } catch {
                #expect(error.description.contains(reason), "\(url): \(error)")
            }
        }
        let location = try PostgresLocation(url: "postgres://chat:s3cret@127.0.0.1:1/chat")
        #expect(!location.description.contains("s3cret"))

        let port = try freeLoopbackPort()
        let started = ContinuousClock.now
        do {
            try await PostgresDatabase.withDatabase(url: "postgres://chat:s3cret@127.0.0.1:\(port)/chat", logger: Self.logger) { _ in }
            Issue.record("connected to nothing")
        } catch {
            #expect(!"\(error)".contains("s3cret"))
            #expect("\(error)".contains("connecting"), "\(error)")
        }
        #expect(ContinuousClock.now - started < .seconds(15))

        try await PostgresCluster.with { cluster in
            try await PostgresDatabase.withDatabase(url: cluster.url(), logger: Self.logger, deadline: databaseWait) { database in
                _ = try await database.storage.messages.messageCount()
            }
            // Every migration applied, the last included: the search index takes rows without a pending list.
            let options = try await cluster.psql("SELECT reloptions FROM pg_class WHERE relname = 'messages_search'")
            #expect(options.contains("fastupdate=off"), "\(options)")
            // A migration this binary does not know: made by a newer server.
            try await cluster.psql("INSERT INTO schema_migrations (name, applied_at) VALUES ('9999_future', 0)")
            do {
                try await PostgresDatabase.withDatabase(url: cluster.url(), logger: Self.logger, deadline: databaseWait) { _ in }
                Issue.record("a newer schema was accepted")
            } catch {
                #expect("\(error)".contains("9999_future") && "\(error)".contains("newer"), "\(error)")
            }
        }
    }

    @Test("the password comes from the URL, else PGPASSWORD, else ?passwordFile=PATH; it never shows")
    func passwords() throws {
        let directory = TestServer.makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = directory + "/pw"
        try "from-file\n".write(toFile: file, atomically: true, encoding: .utf8)
        let base = "postgres://chat@db.example:6543/chat"
        #expect(try PostgresLocation(url: "postgres://chat:in%40url@db.example/chat", environment: ["PGPASSWORD": "env"]).password == "in@url")
        #expect(try PostgresLocation(url: base, environment: ["PGPASSWORD": "env"]).password == "env")
        let fromFile = try PostgresLocation(url: base + "?passwordFile=" + file, environment: ["PGPASSWORD": "env"])
        #expect(fromFile.password == "from-file" && fromFile.port == 6543 && fromFile.host == "db.example")
        #expect(fromFile.description == "postgres://chat@db.example:6543/chat")
        #expect(throws: StoreError.self) { _ = try PostgresLocation(url: base + "?passwordFile=" + directory + "/missing", environment: [:]) }
        #expect(try PostgresLocation(url: base, environment: [:]).password == nil)
    }
}
