import ChatProtocol
import ChatServer
@_spi(Testing) import ChatServerFixture
@_spi(Testing) @testable import ChatStore
import ChatStorePostgres
import Foundation
import Logging
import TestProcesses
import Testing

/// Full-text search: through real servers and WebSocket clients on SQLite and on PostgreSQL, and at the store for
/// what the server cannot write yet (private notes).
@Suite("Search", .serialized, .timeLimit(.minutes(4)), .stopsServers)
struct SearchTests {
    private static let logger: Logger = {
        var logger = Logger(label: "test.search")
        logger.logLevel = .error
        return logger
    }()

    /// A server on `backend` (a new SQLite data directory, or a throwaway PostgreSQL), and a way to make tokens.
    private func withServer(_ backend: StoreBackend, _ body: @escaping @Sendable (TestServer, StoreBackend.MakeToken) async throws -> Void)
        async throws {
        try await backend.withServers { servers, makeToken in try await body(servers[0], makeToken) }
    }

    /// Sends a search and waits for its answer: the results, or the error frame that names it.
    private func search(_ client: Client, _ query: String, conversation: String? = nil, limit: Int? = nil) async throws
        -> SearchAnswer {
        let id = UUID().uuidString
        try client.connection.send(.search(SearchRequest(requestId: id, query: query, conversation: conversation, limit: limit)))
        return try await client.connection.receive(timeout: frameWait) { frame -> SearchAnswer? in
            switch frame {
            case .searchResults(let results) where results.requestId == id: .results(results.results)
            case .error(let error) where error.ref == id: .refused(error)
            default: nil
            }
        }
    }

    private func hits(_ client: Client, _ query: String, conversation: String? = nil, limit: Int? = nil) async throws -> [SearchHit] {
        switch try await search(client, query, conversation: conversation, limit: limit) {
        case .results(let hits): return hits
        case .refused(let error): throw TestFailure("search \(query.prefix(20)) refused: \(error.code) \(error.message)")
        }
    }

    /// Sends `text` and returns its sequence number once stored.
    private func store(_ client: Client, _ text: String, to conversation: String? = nil) async throws -> Int {
        try client.send(text, to: conversation)
        return try await client.ack().seq
    }

    @Test("ranking, limits, and who finds what: a customer only their own messages", arguments: StoreBackend.allCases)
    func rankingAndVisibility(on backend: StoreBackend) async throws {
        try await withServer(backend) { server, token in
            let alice = try await server.connect("alice", token: try await token("alice", .customer), lastSeq: 0)
            let bob = try await server.connect("bob", token: try await token("bob", .customer), lastSeq: 0)
            let sam = try await server.connect("sam", token: try await token("sam", .agent), lastSeqs: [:])
            // Enough other text that every searched word is rare in the index (bm25's weight of a word found in more
            // than half the messages is almost nothing, which would leave only the newest-first order to see).
            for filler in ["good morning", "thanks a lot", "see you soon", "have a nice day", "the weather is fine",
                           "is anyone there", "hello again", "bye for now"] {
                _ = try await store(bob, filler)
            }
            // The better matches are stored first, so relevance, not the newest-first order of ties, puts them on top.
            let both = try await store(alice, "parcel and refund please")
            let twice = try await store(alice, "parcel parcel still missing")
            let once = try await store(alice, "my parcel never arrived")
            let bobsParcel = try await store(bob, "my parcel is with the neighbour")
            _ = try await store(bob, "the secret word is zanzibar")
            _ = try await store(sam, "checking with the courier now", to: "alice")

            let parcel = try await hits(alice, "parcel")
            #expect(parcel.map(\.seq) == [twice, once, both], "word twice first, then the newer of the two equal matches")
            #expect(parcel.allSatisfy { $0.conversation == "alice" })
            #expect(parcel.first?.snippet == "[parcel] [parcel] still missing")
            let twoWords = try await hits(alice, "refund parcel")
            #expect(twoWords.first?.seq == both, "a message with both words ranks above those with one")
            #expect(twoWords.count == 3)

            // A customer never finds another customer's text, and cannot name another conversation.
            #expect(try await hits(alice, "zanzibar").isEmpty)
            #expect(try await hits(alice, "neighbour").isEmpty)
            guard case .refused(let forbidden) = try await search(alice, "zanzibar", conversation: "bob") else {
                Issue.record("a customer searched another conversation")
                return
            }
            #expect(forbidden.code == .forbidden)
            #expect(try await hits(bob, "parcel").map(\.seq) == [bobsParcel])

            // Agents search everything, or one conversation.
            #expect(try await hits(sam, "zanzibar").map(\.conversation) == ["bob"])
            #expect(Set(try await hits(sam, "parcel").map(\.conversation)) == ["alice", "bob"])
            #expect(try await hits(sam, "parcel").count == 4)
            #expect(try await hits(sam, "parcel", conversation: "alice").map(\.seq) == [twice, once, both])
            #expect(try await hits(sam, "courier").first?.snippet == "checking with the [courier] now")
            #expect(try await hits(sam, "parcel", conversation: "nobody").isEmpty)

            // The limit is honoured, and clamped to 1...100.
            #expect(try await hits(sam, "parcel", limit: 2).count == 2)
            #expect(try await hits(sam, "parcel", limit: 0).count == 1)
            #expect(try await hits(sam, "parcel", limit: 1000).count == 4)
            let fillers = try await hits(sam, "good thanks soon nice weather anyone hello bye")
            #expect(fillers.count == 8)
            #expect(try await hits(sam, "good thanks soon nice weather anyone hello bye", limit: 3).count == 3)
        }
    }

    @Test("words in other languages: case and accents folded in any script", arguments: StoreBackend.allCases)
    func otherLanguages(on backend: StoreBackend) async throws {
        try await withServer(backend) { server, token in
            let alice = try await server.connect("alice", token: try await token("alice", .customer), lastSeq: 0)
            let street = try await store(alice, "Wir treffen uns in der Straße")
            let cafe = try await store(alice, "Un Café, s'il vous plaît")
            let hello = try await store(alice, "Привет, как дела?")
            let loud = try await store(alice, "ПРИВЕТ ещё раз")
            let japanese = try await store(alice, "注文 が 届きません")
            let mail = try await store(alice, "write to help@example.com or call 0800-123")

            #expect(try await hits(alice, "straße").map(\.seq) == [street])
            #expect(try await hits(alice, "Straße").first?.snippet == "Wir treffen uns in der [Straße]")
            #expect(try await hits(alice, "cafe").map(\.seq) == [cafe], "cafe finds Café")
            #expect(try await hits(alice, "CAFÉ").map(\.seq) == [cafe])
            #expect(try await hits(alice, "plait").map(\.seq) == [cafe])
            #expect(Set(try await hits(alice, "привет").map(\.seq)) == [hello, loud], "Cyrillic case folded")
            #expect(try await hits(alice, "привет").contains { $0.snippet.hasPrefix("[Привет]") })
            #expect(try await hits(alice, "注文").map(\.seq) == [japanese])
            // Words are split at punctuation alike on both stores (PostgreSQL's parser would keep a host name whole).
            #expect(try await hits(alice, "example").map(\.seq) == [mail])
            #expect(try await hits(alice, "help@example.com").map(\.seq) == [mail])
            #expect(try await hits(alice, "0800").first?.snippet == "write to help@example.com or call [0800]-123")
        }
    }

    @Test("hostile queries are searched as words or refused cleanly; the connection keeps working", arguments: StoreBackend.allCases)
    func hostileQueries(on backend: StoreBackend) async throws {
        try await withServer(backend) { server, token in
            let alice = try await server.connect("alice", token: try await token("alice", .customer), lastSeq: 0)
            let sam = try await server.connect("sam", token: try await token("sam", .agent), lastSeqs: [:])
            let parcel = try await store(alice, "parcel and refund please")
            _ = try await store(alice, "near the door")

            // Syntax of FTS5 or tsquery means nothing: what is left are plain words.
            for query in ["\"parcel", "parcel*", "^parcel", "parcel AND", "(parcel", "parcel)", "parcel:*", "'parcel'",
                          "parcel & !", "parcel <-> x", "-parcel", "+parcel", "parcel NOT"] {
                #expect(try await hits(alice, query).first?.seq == parcel, "query \(query)")
                #expect(try await hits(sam, query).first?.seq == parcel, "query \(query)")
            }
            #expect(try await hits(alice, "AND OR").map(\.seq) == [parcel], "AND and OR are words")
            #expect(try await hits(sam, "NEAR(").count == 1, "NEAR is a word")
            #expect(try await hits(alice, "NOT").isEmpty)
            // Nothing left to search, or too long: a clean error naming the request.
            for query in ["\"", "*", "(", ")", "\"\"", "", "   ", "!!! ??? ...", "^", "(((", String(repeating: "x", count: 2000),
                          String(repeating: "é", count: 600)] {
                let answer = try await search(sam, query)
                guard case .refused(let error) = answer else {
                    Issue.record("query of \(query.utf8.count) bytes \(query.prefix(10)) answered \(answer)")
                    continue
                }
                #expect(error.code == .invalidFrame)
            }
            // 1,000 bytes are still searched.
            #expect(try await hits(sam, String(repeating: "parcel ", count: 142)).first?.seq == parcel)

            // Both connections still work: a message is stored and acknowledged.
            #expect(try await store(alice, "still here") == parcel + 2)
            #expect(try await store(sam, "me too", to: "alice") == parcel + 3)
        }
    }

    @Test("notes written by the server: agents find them, a customer never, and a customer's numbers skip them",
          arguments: StoreBackend.allCases)
    func notesThroughTheServer(on backend: StoreBackend) async throws {
        try await withServer(backend) { server, token in
            let alice = try await server.connect("alice", token: try await token("alice", .customer), lastSeq: 0)
            let sam = try await server.connect("sam", token: try await token("sam", .agent), lastSeqs: [:])
            _ = try await store(alice, "my order arrived broken")
            try sam.connection.send(.note(Note(clientId: "n1", conversation: "alice", text: "offer her a voucher, she is upset")))
            let note = try await sam.ack().seq
            let reply = try await store(sam, "here is a voucher for the trouble", to: "alice")
            // The note is not delivered to her: the next message she gets is the reply, in her numbering.
            let received = try await alice.message()
            #expect(received.text.hasPrefix("here is a voucher") && received.seq == 2 && reply == 3)

            let customerHits = try await hits(alice, "voucher")
            #expect(customerHits.map(\.seq) == [received.seq], "her own numbering, and not the note")
            #expect(customerHits.allSatisfy { $0.isPrivate == nil })
            #expect(try await hits(alice, "upset").isEmpty)
            let agentHits = try await hits(sam, "voucher")
            #expect(Set(agentHits.map(\.seq)) == [note, reply])
            #expect(agentHits.first { $0.seq == note }?.isPrivate == true)
            #expect(agentHits.first { $0.seq == reply }?.isPrivate == nil)
            #expect(try await hits(sam, "upset").map(\.seq) == [note])
        }
    }

    // MARK: Private notes, at the store

    /// Rows written with SQL, as the schema defines them (a note has kind 'note' and no customer_seq; a customer's
    /// message after it has customer_seq one lower than seq), to reach what the server's paths do not: a status event
    /// with text, and rows deleted or edited behind the index.
    @Test("agents find notes, customers never; customers get their own numbering; events are not searched",
          arguments: StoreBackend.allCases)
    func notes(on backend: StoreBackend) async throws {
        try await withRawStorage(backend) { storage, execute in
            _ = try await storage.tokens.create(username: "alice", role: .customer)
            _ = try await storage.tokens.create(username: "sam", role: .agent)
            let outcomes = try await storage.messages.commit([
                OutgoingMessage(sender: "alice", senderRole: .customer, clientId: "a1", text: "where is my parcel", target: .conversation("alice")),
                OutgoingMessage(sender: "sam", senderRole: .agent, clientId: "s1", text: "looking into it", target: .conversation("alice")),
            ])
            #expect(outcomes.count == 2)
            try await execute("""
                INSERT INTO messages (conversation_id, seq, sender, sender_role, client_id, body, sent_at, broadcast, customer_ordinal, kind, customer_seq)
                SELECT id, 3, 'sam', 'agent', 'n1', 'customer sounds angry, offer a voucher', 1700000000003, \(backend.false), 1, 'note', NULL
                FROM conversations WHERE customer = 'alice'
                """)
            try await execute("""
                INSERT INTO messages (conversation_id, seq, sender, sender_role, client_id, body, sent_at, broadcast, customer_ordinal, kind, customer_seq)
                SELECT id, 4, 'alice', 'customer', 'a2', 'the voucher works, thanks', 1700000000004, \(backend.false), 2, 'message', 3
                FROM conversations WHERE customer = 'alice'
                """)
            try await execute("""
                INSERT INTO messages (conversation_id, seq, sender, sender_role, client_id, body, sent_at, broadcast, customer_ordinal, kind, customer_seq, event_status)
                SELECT id, 5, 'sam', 'agent', 'e1', 'voucher angry resolved', 1700000000005, \(backend.false), 2, 'status', NULL, 'resolved'
                FROM conversations WHERE customer = 'alice'
                """)
            try await execute("UPDATE conversations SET last_seq = 5, customer_messages = 2 WHERE customer = 'alice'")

            let agentVoucher = try await storage.search.search(SearchQuery(words: ["voucher"], audience: .agent))
            #expect(agentVoucher.map(\.seq).sorted() == [3, 4], "agents find the note and the message, not the status event")
            #expect(agentVoucher.first { $0.seq == 3 }?.isNote == true)
            #expect(agentVoucher.first { $0.seq == 4 }?.isNote == false)
            #expect(try await storage.search.search(SearchQuery(words: ["angry"], audience: .agent)).map(\.seq) == [3])

            let customerVoucher = try await storage.search.search(SearchQuery(words: ["voucher"], audience: .customer("alice")))
            #expect(customerVoucher.map(\.seq) == [3], "the customer's numbering (customer_seq), and no note")
            #expect(customerVoucher.allSatisfy { !$0.isNote })
            #expect(try await storage.search.search(SearchQuery(words: ["angry", "offer"], audience: .customer("alice"))).isEmpty)
            // Even when an agent's query names the conversation, a customer's query cannot reach a note through it.
            #expect(try await storage.search.search(SearchQuery(words: ["angry"], audience: .customer("alice"), conversation: "alice")).isEmpty)

            // A note removed (or edited) leaves the index.
            try await execute("DELETE FROM messages WHERE client_id = 'n1'")
            #expect(try await storage.search.search(SearchQuery(words: ["angry"], audience: .agent)).isEmpty)
            try await execute("UPDATE messages SET body = 'a coupon works' WHERE client_id = 'a2'")
            #expect(try await storage.search.search(SearchQuery(words: ["voucher"], audience: .agent)).isEmpty)
            #expect(try await storage.search.search(SearchQuery(words: ["coupon"], audience: .agent)).map(\.seq) == [4])
        }
    }

    /// Stores on a new database of `backend`, and a way to run raw SQL on it.
    private func withRawStorage(_ backend: StoreBackend,
                                _ body: @escaping @Sendable (ChatStorage, @escaping @Sendable (String) async throws -> Void) async throws -> Void)
        async throws {
        switch backend {
        case .sqlite:
            let directory = TestServer.makeDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let path = DataDirectory(directory).databasePath
            let database = try ChatDatabase(path: path)
            let raw = try RawSQLite(path: path)
            try await body(database.storage) { sql in try await raw.execute(sql) }
        case .postgres:
            try await PostgresCluster.with { cluster in
                try await PostgresDatabase.withDatabase(url: cluster.url(), logger: Self.logger, deadline: databaseWait) { database in
                    try await body(database.storage) { sql in _ = try await cluster.psql(sql) }
                }
            }
        }
    }

    @Test("the SQLite migration indexes the messages stored before it")
    func migrationIndexesExistingRows() async throws {
        let directory = TestServer.makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = DataDirectory(directory).databasePath
        // A database as the previous version left it: migrated up to the support workflow, with messages.
        do {
            let legacy = try RawSQLite(path: path)
            try legacy.migrate(upTo: "0006_support_workflow")
            try await legacy.execute("""
                INSERT INTO conversations (customer, last_seq, customer_messages, created_at) VALUES ('alice', 2, 2, 0);
                INSERT INTO messages (conversation_id, seq, sender, sender_role, client_id, body, sent_at, customer_ordinal, customer_seq)
                VALUES (1, 1, 'alice', 'customer', 'a1', 'an old complaint about the printer', 1, 1, 1),
                       (1, 2, 'alice', 'customer', 'a2', 'still about the printer', 2, 2, 2)
                """)
        }
        let database = try ChatDatabase(path: path)
        #expect(try database.appliedMigrations().contains("0007_search"))
        let found = try await database.storage.search.search(SearchQuery(words: ["printer"], audience: .customer("alice")))
        #expect(Set(found.map(\.seq)) == [1, 2])
        #expect(found.first?.snippet.contains("[printer]") == true)
    }
}

/// What a search was answered with.
enum SearchAnswer {
    case results([SearchHit])
    case refused(ErrorFrame)
}

extension StoreBackend {
    /// How each database spells false in SQL.
    var `false`: String { self == .sqlite ? "0" : "false" }
}

@Suite("Search queries and snippets")
struct SearchQueryTests {
    @Test("a query's words: letters and digits only, operators are plain words, repeats once, at most 16")
    func words() {
        #expect(SearchQuery.words(in: "\"parcel\" AND (refund*) ^x NEAR(a b)") == ["parcel", "AND", "refund", "x", "NEAR", "a", "b"])
        #expect(SearchQuery.words(in: "Straße café привет 注文") == ["Straße", "café", "привет", "注文"])
        #expect(SearchQuery.words(in: "\" * ( ) ^ -- ::").isEmpty)
        #expect(SearchQuery.words(in: "a A a b").count == 2)
        #expect(SearchQuery.words(in: (1...40).map { "w\($0)" }.joined(separator: " ")).count == SearchQuery.maxWords)
    }

    @Test("snippet markers: matches in brackets, the text's own brackets and backslashes escaped, round trip")
    func snippets() {
        let marked = "see \u{E000}parcel\u{E001} [x] a\\b"
        let wire = SearchMarkers.wire(marked)
        #expect(wire == "see [parcel] \\[x\\] a\\\\b")
        #expect(SearchSnippet.decode(wire) == [.init(text: "see ", isMatch: false), .init(text: "parcel", isMatch: true),
                                               .init(text: " [x] a\\b", isMatch: false)])
        #expect(SearchMarkers.snippet(of: "Un Café, s'il vous plaît", words: ["cafe"]) == "Un [Café], s'il vous plaît")
        let long = (1...40).map { "w\($0)" }.joined(separator: " ")
        #expect(SearchMarkers.snippet(of: long, words: ["w30"]) == "…w25 w26 w27 w28 w29 [w30] w31 w32 w33 w34 w35 w36 w37 w38 w39 w40")
        #expect(SearchMarkers.snippet(of: long, words: ["w2"]).hasSuffix("w16…"))
    }
}
