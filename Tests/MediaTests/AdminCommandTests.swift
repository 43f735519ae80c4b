import ChatClient
import ChatProtocol
@_spi(Testing) import ChatServerFixture
@_spi(Testing) import ChatStore
import Foundation
import TestProcesses
import Testing

// `chat-admin tokens ...` and `chat-admin export` through the built executable, on the data directory of a real
// running server. They live beside the media maintenance tests because they share the running-server harness.
@Suite("chat-admin tokens and export while the server runs", .serialized, .stopsServers)
struct AdminCommandTests {
    @Test("create, list, rotate and revoke: tokens are shown once, stored hashed, and old sessions are cut")
    func tokenLifecycle() async throws {
        let server = try await MediaServer.start()
        let dir = server.directory
        let created = try await admin(["tokens", "create", "alice", "--role", "customer", "--json", "--data-dir", dir])
        let aliceToken = try #require(created["token"] as? String)
        let (alice, welcome) = try await server.connect("alice", token: aliceToken)
        #expect(welcome.role == .customer)

        let conflict = try await runAdmin(["tokens", "create", "alice", "--role", "agent", "--data-dir", dir])
        #expect(conflict.status == 1 && conflict.stderr.contains("one role"), "\(conflict.stderr)")

        let listed = try await runAdmin(["tokens", "list", "--json", "--data-dir", dir])
        #expect(listed.status == 0 && !listed.stdout.contains(aliceToken))
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]])
        #expect(rows.count == 1 && rows[0]["user"] as? String == "alice" && rows[0]["active"] as? Bool == true)
        #expect(rows[0]["lastUsedAt"] as? Int64 != nil, "connecting records the last use")

        // Rotation: one new token, the old one revoked and its live session closed by the server's poll. (How soon
        // is AuthenticationTests' concern; here the wait includes running chat-admin, which under a full parallel
        // test run once took long enough to make a 2-second bound fail.)
        let rotated = try await admin(["tokens", "rotate", "alice", "--json", "--data-dir", dir])
        let newToken = try #require(rotated["token"] as? String)
        #expect(newToken != aliceToken && rotated["role"] as? String == "customer")
        #expect((rotated["revoked"] as? [Int64]) == [rows[0]["id"] as? Int64 ?? -1])
        #expect(await alice.closed(timeout: .seconds(10))?.code == CloseCode.sessionRevoked)
        #expect(await refusal(server, "alice", aliceToken) == CloseCode.authenticationFailed)
        #expect(try await server.connect("alice", token: newToken).1.role == .customer)

        // A lifetime carries over on rotation unless --expires says otherwise.
        let bob = try await admin(["tokens", "create", "bob", "--role", "agent", "--expires", "30d", "--json", "--data-dir", dir])
        let bobRotated = try await admin(["tokens", "rotate", "bob", "--json", "--data-dir", dir])
        let thirtyDays: Int64 = 30 * 86_400_000
        let bobExpiry = try #require(bobRotated["expiresAt"] as? Int64)
        #expect(abs(bobExpiry - epochMilliseconds() - thirtyDays) < 60_000)
        #expect(bobRotated["role"] as? String == "agent" && bobRotated["token"] as? String != bob["token"] as? String)
        let shorter = try await admin(["tokens", "rotate", "bob", "--expires", "1h", "--json", "--data-dir", dir])
        #expect(abs((shorter["expiresAt"] as? Int64 ?? 0) - epochMilliseconds() - 3_600_000) < 60_000)

        // Revoke by id; rotating a user without active tokens is refused.
        let bobId = try #require(shorter["id"] as? Int64)
        let revoked = try await runAdmin(["tokens", "revoke", String(bobId), "--data-dir", dir])
        #expect(revoked.status == 0 && revoked.stdout.contains("revoked 1 token of bob"), "\(revoked.stdout)")
        #expect(await refusal(server, "bob", shorter["token"] as? String ?? "") == CloseCode.authenticationFailed)
        let noActive = try await runAdmin(["tokens", "rotate", "bob", "--data-dir", dir])
        #expect(noActive.status == 1 && noActive.stderr.contains("active token for user bob not found"))
        let unknown = try await runAdmin(["tokens", "rotate", "carol", "--data-dir", dir])
        #expect(unknown.status == 1)
        let table = try await runAdmin(["tokens", "list", "--data-dir", dir])
        #expect(table.stdout.contains("revoked") && table.stdout.contains("active") && table.stdout.contains("LAST USED"))

        // No token ever reaches the database files in clear.
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix("chat.sqlite") }
        let stored = try files.map { try Data(contentsOf: URL(fileURLWithPath: dir + "/" + $0)) }
        for token in [aliceToken, newToken, bobRotated["token"] as? String ?? "missing"] {
            #expect(!stored.contains { $0.range(of: Data(token.utf8)) != nil }, "a token is stored in clear")
        }
        await server.stop()
    }

    @Test("import of the original session_tokens.db: dry run, idempotent, bad rows skipped, foreign files refused")
    func legacyImport() async throws {
        let server = try await MediaServer.start()
        let dir = server.directory
        let legacy = dir + "/session_tokens.db"
        do {
            let queue = try RawSQLite(path: legacy)
            try await queue.execute("CREATE TABLE Sessions (id INTEGER PRIMARY KEY, username TEXT NOT NULL, session_token TEXT)")
            for (user, token) in [("johndoe", "abc123token"), ("jane", "k3R9vQ2mX8pL5tW1zN7bC4dF"), ("../evil", "x"),
                                  ("nobody", nil), ("boss", "Zb7Qm2Lr9Xk4Wt1Vp6Yc3Nd8")] as [(String, String?)] {
                try await queue.execute("INSERT INTO Sessions (username, session_token) VALUES (?, ?)", user, token)
            }
        }
        let sessionCount = { try await server.count("SELECT count(*) FROM sessions") }

        let dry = try await admin(["tokens", "import", legacy, "--agent", "boss", "--dry-run", "--json", "--data-dir", dir])
        #expect((dry["imported"] as? [String]) == ["johndoe", "jane", "boss"] && dry["dryRun"] as? Bool == true)
        #expect((dry["skipped"] as? [[String: Any]])?.compactMap { $0["user"] as? String } == ["../evil", "nobody"])
        #expect(try await sessionCount() == 0, "a dry run changes nothing")
        #expect(await refusal(server, "johndoe", "abc123token") == CloseCode.authenticationFailed)

        let human = try await runAdmin(["tokens", "import", legacy, "--agent", "boss", "--data-dir", dir])
        #expect(human.status == 0 && human.stdout.contains("imported 3 tokens, 0 already present, 2 skipped"), "\(human.stdout)")
        #expect(human.stdout.contains("invalid username") && human.stdout.contains("empty token"))
        #expect(human.stderr.contains("johndoe") && human.stderr.contains("rotate"), "short legacy tokens are flagged")
        #expect(try await sessionCount() == 3)
        #expect(try await server.connect("johndoe", token: "abc123token").1.role == .customer)
        #expect(try await server.connect("boss", token: "Zb7Qm2Lr9Xk4Wt1Vp6Yc3Nd8").1.role == .agent)
        #expect(await refusal(server, "jane", "abc123token") == CloseCode.authenticationFailed)

        let again = try await admin(["tokens", "import", legacy, "--agent", "boss", "--json", "--data-dir", dir])
        #expect((again["imported"] as? [String]) == [] && (again["alreadyPresent"] as? [String])?.count == 3)
        #expect(try await sessionCount() == 3, "importing twice adds nothing")

        // Foreign files: clear error, exit 1, nothing changed.
        let text = dir + "/notes.txt"
        try Data("johndoe abc123token\n".utf8).write(to: URL(fileURLWithPath: text))
        let other = dir + "/other.db"
        try await RawSQLite(path: other).execute("CREATE TABLE users (name TEXT)")
        let wrongColumns = dir + "/columns.db"
        try await RawSQLite(path: wrongColumns).execute("CREATE TABLE sessions (id INTEGER, username TEXT)")
        for (path, reason) in [(text, "not an SQLite database"), (other, "no Sessions table"),
                               (wrongColumns, "no session_token column"), (dir + "/missing.db", "no such file"), (dir, "a directory")] {
            let result = try await runAdmin(["tokens", "import", path, "--data-dir", dir])
            #expect(result.status == 1 && result.stderr.contains(reason), "\(path): \(result.stderr)")
        }
        #expect(try await sessionCount() == 3)
        await server.stop()
    }

    @Test("export: a customer's conversation in order, with attachment names and links, as text and JSON")
    func export() async throws {
        let server = try await MediaServer.start()
        let dir = server.directory
        let alice = try await server.connect("alice", token: try await server.makeToken("alice", role: .customer)).0
        let bob = try await server.connect("bob", token: try await server.makeToken("bob", role: .agent)).0
        try alice.send(.send(Send(clientId: "a1", text: "hello\nsecond line")))
        _ = try await alice.receive(timeout: frameWait) { if case .ack(let ack) = $0, ack.clientId == "a1" { ack } else { nil } }
        let image = try await Samples.image("export.png", width: 64, height: 48)
        let done = try await upload(image, as: "photo.png", by: alice)
        try await send(done, by: alice, id: "a2")
        try bob.send(.send(Send(clientId: "b1", text: "hi alice", conversation: "alice")))
        _ = try await bob.receive(timeout: frameWait) { if case .ack(let ack) = $0, ack.clientId == "b1" { ack } else { nil } }

        let text = try await runAdmin(["export", "alice", "--base-url", "https://chat.example.com/", "--data-dir", dir])
        #expect(text.status == 0, "\(text.stderr)")
        let lines = text.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("Conversation of alice: 3 messages") == true, "\(lines)")
        let hello = try #require(lines.firstIndex { $0.contains("#1 alice: hello") })
        #expect(lines[hello + 1] == "    second line")
        let photo = try #require(lines.firstIndex { $0.contains("#2 alice: see photo.png") })
        #expect(lines[photo + 1].hasPrefix("    attachment: photo.png (image/png, "), "\(lines[photo + 1])")
        #expect(lines[photo + 1].hasSuffix(", 64x48) https://chat.example.com/media/\(done.attachment.sha256)"))
        #expect(lines.contains { $0.contains("#3 bob (agent): hi alice") })
        #expect(hello < photo)

        let json = try await admin(["export", "alice", "--format", "json", "--data-dir", dir])
        let messages = try #require(json["messages"] as? [[String: Any]])
        #expect(messages.compactMap { $0["seq"] as? Int } == [1, 2, 3])
        #expect(messages.compactMap { $0["sender"] as? String } == ["alice", "alice", "bob"])
        let file = try #require((messages[1]["attachments"] as? [[String: Any]])?.first)
        #expect(file["url"] as? String == "http://127.0.0.1:8080/media/\(done.attachment.sha256)")
        #expect(file["size"] as? Int == image.count && file["expired"] as? Bool == false)

        let future = try await admin(["export", "alice", "--since", "2100-01-01", "--format", "json", "--data-dir", dir])
        #expect((future["messages"] as? [Any])?.isEmpty == true)
        let recent = try await admin(["export", "alice", "--since", "1h", "--format", "json", "--data-dir", dir])
        #expect((recent["messages"] as? [Any])?.count == 3)
        // The first message two days old: --since 1d starts at the second.
        try await server.sqlite().execute("UPDATE messages SET sent_at = sent_at - 172800000 WHERE seq = 1")
        let lastDay = try await admin(["export", "alice", "--since", "1d", "--format", "json", "--data-dir", dir])
        #expect(((lastDay["messages"] as? [[String: Any]]) ?? []).compactMap { $0["seq"] as? Int } == [2, 3])

        let agent = try await runAdmin(["export", "bob", "--data-dir", dir])
        #expect(agent.status == 1 && agent.stderr.contains("is an agent"))
        let unknown = try await runAdmin(["export", "zed", "--data-dir", dir])
        #expect(unknown.status == 1 && unknown.stderr.contains("customer zed not found"))
        let badDate = try await runAdmin(["export", "alice", "--since", "last tuesday", "--data-dir", dir])
        #expect(badDate.status == 64)
        await server.stop()
    }

    @Test("export lists status changes and assignments, leaves notes out unless asked, and numbers messages as the customer does; a note's file stays the agents'")
    func exportWithWorkflow() async throws {
        let server = try await MediaServer.start()
        let dir = server.directory
        let aliceToken = try await server.makeToken("alice", role: .customer)
        let alice = try await server.connect("alice", token: aliceToken).0
        let bobToken = try await server.makeToken("bob", role: .agent)
        let bob = try await server.connect("bob", token: bobToken).0
        func acked(_ connection: ChatConnection, _ id: String) async throws {
            _ = try await connection.receive(timeout: frameWait) { frame -> Bool? in
                if case .ack(let ack) = frame, ack.clientId == id { return true }
                if case .error(let error) = frame, error.ref == id { Issue.record("\(id) refused: \(error.message)") }
                return nil
            }
        }
        try alice.send(.send(Send(clientId: "a1", text: "the box arrived crushed")))
        try await acked(alice, "a1")
        // A note with a file only agents may fetch.
        let image = try await Samples.image("evidence.png", width: 32, height: 24)
        let done = try await upload(image, as: "evidence.png", by: bob)
        try bob.send(.note(Note(clientId: "n1", conversation: "alice", text: "carrier damage, refund approved",
                                attachments: [AttachmentReference(uploadId: done.uploadId)])))
        try await acked(bob, "n1")
        try bob.send(.setStatus(SetStatus(requestId: "r1", conversation: "alice", status: .resolved)))
        _ = try await bob.receive(timeout: frameWait) { if case .conversationUpdated(let update) = $0 { update } else { nil } }
        try bob.send(.send(Send(clientId: "b1", text: "refund sent", conversation: "alice")))
        try await acked(bob, "b1")

        #expect(try await server.request("GET", "/media/\(done.attachment.sha256)", token: aliceToken).status == 404,
                "the customer cannot fetch a file only a note attaches")
        #expect(try await server.request("GET", "/media/\(done.attachment.sha256)", token: bobToken).status == 200)

        let forCustomer = try await runAdmin(["export", "alice", "--data-dir", dir])
        #expect(forCustomer.status == 0, "\(forCustomer.stderr)")
        let lines = forCustomer.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("Conversation of alice: 2 messages and 1 status change or assignment") == true, "\(lines)")
        #expect(!forCustomer.stdout.contains("refund approved") && !forCustomer.stdout.contains("evidence.png"))
        #expect(lines.contains { $0.contains("#1 alice: the box arrived crushed") })
        #expect(lines.contains { $0.contains("-- bob resolved the conversation") })
        #expect(lines.contains { $0.contains("#2 bob (agent): refund sent") }, "the customer's numbering: no gap where the note was")

        let json = try await admin(["export", "alice", "--format", "json", "--data-dir", dir])
        let entries = try #require(json["messages"] as? [[String: Any]])
        #expect(entries.compactMap { $0["kind"] as? String } == ["message", "status", "message"])
        #expect(entries.map { $0["seq"] as? Int } == [1, nil, 2])

        let withNotes = try await admin(["export", "alice", "--include-notes", "--format", "json", "--data-dir", dir])
        let all = try #require(withNotes["messages"] as? [[String: Any]])
        #expect(all.compactMap { $0["kind"] as? String } == ["message", "note", "status", "message"])
        #expect(all.compactMap { $0["seq"] as? Int } == [1, 2, 3, 4])
        #expect(withNotes["includesNotes"] as? Bool == true)
        let internalText = try await runAdmin(["export", "alice", "--include-notes", "--data-dir", dir])
        #expect(internalText.stdout.contains("WITH PRIVATE NOTES") && internalText.stdout.contains("[private note]: carrier damage"))
        await server.stop()
    }
}

/// Runs chat-admin with `--json` and returns its object, failing the test on a non-zero exit.
private func admin(_ arguments: [String]) async throws -> [String: Any] {
    let result = try await runAdmin(arguments)
    guard result.status == 0 else { throw TestFailure("chat-admin \(arguments.joined(separator: " ")) exited \(result.status): \(result.stderr)") }
    guard let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] else {
        throw TestFailure("chat-admin \(arguments.joined(separator: " ")) printed no JSON object: \(result.stdout)")
    }
    return object
}

/// The close code the server answers a hello with `token` with, or nil if it was accepted.
private func refusal(_ server: MediaServer, _ user: String, _ token: String) async -> UInt16? {
    let connection = ChatConnection(url: server.url, bearer: token)
    if (try? await connection.hello(Hello(user: user))) != nil { return nil }
    return await connection.closed(timeout: frameWait)?.code
}
