import ChatClient
import ChatProtocol
import ChatServer
@_spi(Testing) import ChatServerFixture
@_spi(Testing) import ChatStore
import ChatStorePostgres
import Foundation
import Logging
import TestProcesses
import Testing

/// `chat-admin migrate` from a real server's SQLite data directory into a real PostgreSQL, through the built tool.
@Suite("chat-admin migrate", .serialized, .timeLimit(.minutes(3)), .stopsServers)
struct MigrationTests {
    private static let logger: Logger = {
        var logger = Logger(label: "test.migrate")
        logger.logLevel = .error
        return logger
    }()

    private static let present = String(repeating: "a", count: 64)
    private static let pruned = String(repeating: "b", count: 64)
    private static let storing = String(repeating: "c", count: 64)

    /// Counts per table from `migrate --json`: sqlite, copied, postgres.
    private func tables(_ output: String) throws -> [String: [String: Int]] {
        let object = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any]
        var result: [String: [String: Int]] = [:]
        for row in object?["tables"] as? [[String: Any]] ?? [] {
            guard let name = row["table"] as? String else { continue }
            result[name] = row.compactMapValues { $0 as? Int }
        }
        return result
    }

    @Test("copies every table (messages, notes and status events, tokens, markers, canned replies, blobs, uploads, attachments, pending deletions); twice changes nothing; the copy serves the same chat")
    func migrateFromSQLite() async throws {
        try await PostgresCluster.with { cluster in
            let url = cluster.url()
            // A chat on the embedded server: questions, an answer, a read marker, a note, a resolution, an assignment.
            let embedded = try await TestServer.start()
            let alice = try await embedded.join("alice", role: .customer)
            let samToken = try await embedded.makeToken("sam", role: .agent)
            let aliceToken = try await embedded.makeToken("alice", role: .customer)
            _ = try await embedded.makeToken("dora", role: .customer)
            let sam = try await embedded.connect("sam", token: samToken, lastSeqs: [:])
            for index in 1...3 {
                try alice.send("question \(index)", clientId: "q\(index)")
                _ = try await alice.ack()
            }
            try sam.send("answer", clientId: "a1", to: "alice")
            _ = try await sam.ack()
            try sam.connection.send(.read(ReadMarker(conversation: "alice", seq: 3)))
            _ = try await alice.connection.receive(timeout: frameWait) { if case .read(let receipt) = $0 { receipt } else { nil } }
            try sam.connection.send(.note(Note(clientId: "n1", conversation: "alice", text: "refund approved")))
            #expect(try await sam.ack().seq == 5)
            try sam.connection.send(.setStatus(SetStatus(requestId: "r1", conversation: "alice", status: .resolved)))
            #expect(try await sam.updated().seq == 6)
            try sam.connection.send(.assign(Assign(requestId: "r2", conversation: "alice", agent: "sam")))
            #expect(try await sam.updated().seq == 7)
            await embedded.stop()

            // The media catalog's rows and a canned reply, as an earlier server left them.
            let path = embedded.configuration.databasePath
            try await ChatDatabase(path: path).storage.canned.save(CannedReply(name: "thanks", text: "Thanks {customer}!"))
            try await RawSQLite(path: path).execute("""
                INSERT INTO blobs (hash, size, mime_type, width, height, thumbnails, created_at, last_referenced_at, state, removed_at,
                                   metadata_removed, frames)
                VALUES ('\(Self.present)', 1234, 'image/png', 10, 20, '[]', 1, 2, 'present', NULL, 1, NULL),
                       ('\(Self.pruned)', 99, 'image/gif', 5, 5, '[]', 1, 2, 'pruned', 3, NULL, 3);
                INSERT INTO uploads (id, username, name, declared_size, state, blob_hash, size, name_mismatch, created_at, updated_at,
                                     completed_at, storing_hash)
                VALUES ('up-1', 'alice', 'photo.png', 1234, 'done', '\(Self.present)', 1234, 1, 1, 2, 2, NULL),
                       ('up-2', 'alice', 'half.bin', NULL, 'receiving', NULL, 10, 0, 3, 4, NULL, '\(Self.storing)');
                INSERT INTO attachments (message_id, position, blob_hash, name, uploader, name_mismatch)
                VALUES (1, 0, '\(Self.present)', 'photo.png', 'alice', 1);
                INSERT INTO blob_deletions (hash, disposal, thumbnails, created_at) VALUES ('\(Self.pruned)', 'delete', 1, 3);
                """)

            let admin = try builtExecutable("chat-admin")
            let options = ["--database-timeout", "\(Int(databaseWait.components.seconds))", "--json"]
            let first = try await runTool(admin, ["migrate", "--from", path, "--to", url] + options, timeout: .seconds(120))
            #expect(first.status == 0, "\(first.stderr)")
            let expected = ["sessions": 4, "conversations": 1, "messages": 7, "read_markers": 1, "blobs": 2, "uploads": 2, "attachments": 1,
                            "blob_deletions": 1, "canned_replies": 1]
            let copied = try tables(first.output)
            #expect(Set(copied.keys) == Set(expected.keys))
            for (table, count) in expected {
                #expect(copied[table] == ["sqlite": count, "copied": count, "updated": 0, "postgres": count], "\(table): \(String(describing: copied[table]))")
            }
            // The workflow columns, the kinds of rows, the flags and the pending deletion came over as they were.
            #expect(try await cluster.psql("SELECT status || ' ' || assignee FROM conversations") == "resolved sam\n")
            #expect(try await cluster.psql("SELECT string_agg(kind, ' ' ORDER BY id) FROM messages")
                    == "message message message message note status assignment\n")
            #expect(try await cluster.psql("SELECT storing_hash FROM uploads WHERE id = 'up-2'") == Self.storing + "\n")
            #expect(try await cluster.psql("SELECT name_mismatch FROM attachments") == "t\n")
            #expect(try await cluster.psql("SELECT disposal || ' ' || thumbnails FROM blob_deletions") == "delete true\n")
            #expect(try await cluster.psql("SELECT state || ' ' || frames FROM blobs WHERE hash = '\(Self.pruned)'") == "pruned 3\n")

            // SQLite changes after the copy (a token revoked, a marker moved): the next run rewrites those rows, the
            // database from CHAT_DATABASE as for the other commands.
            _ = try await ChatDatabase(path: path).storage.tokens.revoke(username: "dora")
            try await RawSQLite(path: path).execute("UPDATE read_markers SET seq = 4")
            let again = try await runTool(admin, ["migrate", "--from", path] + options, timeout: .seconds(120), environment: ["CHAT_DATABASE": url])
            #expect(again.status == 0, "\(again.stderr)")
            let second = try tables(again.output)
            for (table, count) in expected {
                let updated = table == "sessions" || table == "read_markers" ? 1 : 0
                #expect(second[table] == ["sqlite": count, "copied": 0, "updated": updated, "postgres": count], "\(table): \(String(describing: second[table]))")
            }
            #expect(try await cluster.psql("SELECT revoked_at IS NOT NULL FROM sessions WHERE username = 'dora'") == "t\n")
            // With nothing changed, a run changes nothing and checks every row.
            let third = try await runTool(admin, ["migrate", "--from", path, "--to", url] + options, timeout: .seconds(120))
            #expect(third.status == 0, "\(third.stderr)")
            let unchanged = try tables(third.output)
            for (table, count) in expected {
                #expect(unchanged[table] == ["sqlite": count, "copied": 0, "updated": 0, "postgres": count], "\(table): \(String(describing: unchanged[table]))")
            }

            // The old tokens open sessions on a node of the copy, with the history, the counters and the workflow.
            let node = try await TestServer.start {
                $0.database = url
                $0.databaseTimeout = databaseWait
            }
            let resumed = try await node.connect("alice", token: aliceToken, lastSeq: 0)
            var seqs: [Int] = []
            while seqs.count < 4 { seqs.append(try await resumed.message().seq) }
            #expect(seqs == [1, 2, 3, 4], "the customer's numbering: the note and the events are not hers")
            let agent = try await node.connect("sam", token: samToken, lastSeqs: [:])
            let entry = try await agent.rosterEntry("alice") { _ in true }
            #expect(entry.readSeq == 4 && entry.lastSeq == 7 && entry.status == .resolved && entry.assignee == "sam")
            try resumed.send("after the move", clientId: "m1")
            #expect(try await resumed.ack().seq == 5)
            let canned = try await agent.connection.receive(timeout: frameWait) { frame -> CannedReplies? in
                if case .cannedReplies(let list) = frame, !list.replies.isEmpty { list } else { nil }
            }
            #expect(canned.replies == [CannedReply(name: "thanks", text: "Thanks {customer}!")])
            // New rows get new ids: the identities continue after the copied ones.
            let carol = try await PostgresDatabase.withDatabase(url: url, logger: Self.logger, deadline: databaseWait) { database in
                try await database.storage.tokens.create(username: "carol", role: .customer).token
            }
            #expect(!carol.isEmpty)
            await node.stop()

            // The copy has moved on (a message and a token made there): migrating into it again is refused, unchanged.
            let moved = try await runTool(admin, ["migrate", "--from", path, "--to", url] + options, timeout: .seconds(120))
            #expect(moved.status == 1 && moved.stderr.contains("not a copy") && moved.stderr.contains("Nothing was copied"), "\(moved.stderr)")
            #expect(try await cluster.psql("SELECT count(*) FROM messages") == "8\n")
        }
    }

    @Test("pages of two rows: rows PostgreSQL has before the first key, between two pages and after the last are found; changed rows are rewritten; a copy over several pages is complete")
    func rangesAcrossPages() async throws {
        let directory = TestServer.makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let source = try ChatDatabase(path: DataDirectory(directory).databasePath)
        for name in ["b", "d", "f", "h", "j"] { try await source.storage.canned.save(CannedReply(name: name, text: "reply \(name)")) }
        guard let table = ExportedTable.all.first(where: { $0.name == "canned_replies" }) else { throw TestFailure("no canned_replies") }
        try await PostgresCluster.with { cluster in
            try await PostgresDatabase.withDatabase(url: cluster.url(), logger: Self.logger, deadline: databaseWait) { database in
                let copier = PostgresImport(database: database)
                let copied = try await copier.transfer(table, from: source, copying: true, pageSize: 2)
                #expect(copied.source == 5 && copied.copied == 5 && copied.verified == 5)
                let again = try await copier.transfer(table, from: source, copying: true, pageSize: 2)
                #expect(again.copied == 0 && again.verified == 5)
                // "A" sorts before "b" by bytes (as SQLite orders keys), "e" falls between the pages (b, d] and
                // (d, f], "k" after the last page.
                for (sql, named) in [("INSERT INTO canned_replies VALUES ('A', 'x', 0)", "name A"),
                                     ("INSERT INTO canned_replies VALUES ('e', 'x', 0)", "name e"),
                                     ("INSERT INTO canned_replies VALUES ('k', 'x', 0)", "name k")] {
                    _ = try await cluster.psql(sql)
                    do {
                        _ = try await copier.transfer(table, from: source, copying: false, pageSize: 2)
                        Issue.record("\(sql): accepted")
                    } catch {
                        #expect("\(error)".contains(named) && "\(error)".contains("canned_replies"), "\(error)")
                    }
                    _ = try await cluster.psql("DELETE FROM canned_replies WHERE name IN ('A', 'e', 'k')")
                }
                #expect(try await copier.transfer(table, from: source, copying: false, pageSize: 2).verified == 5)
                // A row whose other columns differ is rewritten from SQLite, on the second page as on the first.
                _ = try await cluster.psql("UPDATE canned_replies SET body = 'changed' WHERE name IN ('b', 'f')")
                let checked = try await copier.transfer(table, from: source, copying: false, pageSize: 2)
                #expect(checked.verified == 3 && checked.updated == 0)
                let rewritten = try await copier.transfer(table, from: source, copying: true, pageSize: 2)
                #expect(rewritten.copied == 0 && rewritten.updated == 2 && rewritten.verified == 5)
                #expect(try await cluster.psql("SELECT string_agg(body, ',' ORDER BY name) FROM canned_replies")
                        == "reply b,reply d,reply f,reply h,reply j\n")
            }
        }
    }

    @Test("a target holding rows of its own (a token made there first, with a clashing id) is refused with one line, and nothing changes")
    func foreignTargetRefused() async throws {
        try await PostgresCluster.with { cluster in
            let embedded = try await TestServer.start()
            let alice = try await embedded.join("alice", role: .customer)
            try alice.send("hello", clientId: "h1")
            _ = try await alice.ack()
            await embedded.stop()
            // The target already has a token, id 1 as alice's in SQLite: once its rows were skipped without a word.
            let target = cluster.url()
            _ = try await PostgresDatabase.withDatabase(url: target, logger: Self.logger, deadline: databaseWait) { database in
                try await database.storage.tokens.create(username: "mallory", role: .agent).token
            }
            let admin = try builtExecutable("chat-admin")
            let result = try await runTool(admin, ["migrate", "--from", embedded.configuration.databasePath, "--to", target,
                                                   "--database-timeout", "\(Int(databaseWait.components.seconds))"], timeout: .seconds(120))
            #expect(result.status == 1, "\(result.output) \(result.stderr)")
            let lines = result.stderr.split(separator: "\n")
            #expect(lines.count == 1, "\(result.stderr)")
            #expect(result.stderr.contains("sessions") && result.stderr.contains("id 1") && result.stderr.contains("differs")
                    && result.stderr.contains("Nothing was copied"), "\(result.stderr)")
            #expect(try await cluster.psql("SELECT count(*) FROM messages") == "0\n")
            #expect(try await cluster.psql("SELECT count(*) FROM conversations") == "0\n")
            #expect(try await cluster.psql("SELECT string_agg(username, ' ') FROM sessions") == "mallory\n")
        }
    }
}
