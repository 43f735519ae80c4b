import ChatClient
import ChatProtocol
@_spi(Testing) import ChatServerFixture
@_spi(Testing) import ChatStore
import Foundation
import TestProcesses
import Testing

// `chat-admin canned` and `chat-admin report` through the built executable, against a running server's data.
@Suite("chat-admin canned replies and the support report", .stopsServers)
struct WorkflowAdminTests {
    @Test("canned replies: added, listed, replaced and removed by chat-admin; agents get the list after welcome and every change; bad names refused")
    func cannedReplies() async throws {
        let server = try await MediaServer.start()
        let dir = server.directory
        let (sam, _) = try await server.connect("sam", token: try await server.makeToken("sam", role: .agent))
        let initial = try await sam.receive(timeout: frameWait) { if case .cannedReplies(let list) = $0 { list } else { nil } }
        #expect(initial.replies.isEmpty)

        let added = try await runAdmin(["canned", "add", "greeting", "Hello {customer}, this is {agent}. How can I help?", "--data-dir", dir])
        #expect(added.status == 0 && added.stderr.contains("added"), "\(added.stderr)")
        let update = try await sam.receive(timeout: frameWait) { if case .cannedReplies(let list) = $0, !list.replies.isEmpty { list } else { nil } }
        #expect(update.replies == [CannedReply(name: "greeting", text: "Hello {customer}, this is {agent}. How can I help?")])
        #expect(update.replies[0].expanded(customer: "alice", agent: "sam") == "Hello alice, this is sam. How can I help?")

        #expect(try await runAdmin(["canned", "add", "refund", "Your refund is on its way.", "--data-dir", dir]).status == 0)
        let replaced = try await runAdmin(["canned", "add", "greeting", "Hi {customer}!", "--data-dir", dir])
        #expect(replaced.status == 0 && replaced.stderr.contains("replaced"))
        let listed = try await runAdmin(["canned", "list", "--json", "--data-dir", dir])
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]])
        #expect(rows.compactMap { $0["name"] as? String } == ["greeting", "refund"])
        #expect(rows.first?["text"] as? String == "Hi {customer}!")
        let table = try await runAdmin(["canned", "list", "--data-dir", dir])
        #expect(table.stdout.hasPrefix("NAME") && table.stdout.contains("refund    Your refund is on its way."))

        let latest = try await sam.receive(timeout: frameWait) { frame -> CannedReplies? in
            if case .cannedReplies(let list) = frame, list.replies.count == 2, list.replies[0].text == "Hi {customer}!" { list } else { nil }
        }
        #expect(latest.replies.map(\.name) == ["greeting", "refund"])

        #expect(try await runAdmin(["canned", "remove", "refund", "--data-dir", dir]).status == 0)
        _ = try await sam.receive(timeout: frameWait) { if case .cannedReplies(let list) = $0, list.replies.count == 1 { list } else { nil } }
        let missing = try await runAdmin(["canned", "remove", "refund", "--data-dir", dir])
        #expect(missing.status == 1 && missing.stderr.contains("no canned reply named refund"))
        let badName = try await runAdmin(["canned", "add", "bad name!", "text", "--data-dir", dir])
        #expect(badName.status == 64)
        let empty = try await runAdmin(["canned", "add", "blank", "   ", "--data-dir", dir])
        #expect(empty.status == 64)

        // A customer never gets them.
        let (alice, _) = try await server.connect("alice", token: try await server.makeToken("alice", role: .customer), lastSeq: 0)
        let frames = try await framesUntilPong(alice)
        #expect(!frames.contains { if case .cannedReplies = $0 { true } else { false } })
        await server.stop()
    }

    @Test("report: per agent and overall, conversations, messages, first response and resolution p50/p90, as a table and as JSON")
    func report() async throws {
        let server = try await MediaServer.start()
        let dir = server.directory
        let (sam, _) = try await server.connect("sam", token: try await server.makeToken("sam", role: .agent))
        let (kim, _) = try await server.connect("kim", token: try await server.makeToken("kim", role: .agent))
        for (customer, agent) in [("alice", sam), ("bob", sam), ("carol", kim)] {
            let (connection, _) = try await server.connect(customer, token: try await server.makeToken(customer, role: .customer), lastSeq: 0)
            try connection.send(.send(Send(clientId: "c1", text: "help, \(customer) here")))
            _ = try await connection.receive(timeout: frameWait) { if case .ack(let ack) = $0 { ack } else { nil } }
            try agent.send(.send(Send(clientId: "r-\(customer)", text: "on it", conversation: customer)))
            _ = try await agent.receive(timeout: frameWait) { if case .ack(let ack) = $0 { ack } else { nil } }
            try agent.send(.send(Send(clientId: "r2-\(customer)", text: "done", conversation: customer)))
            _ = try await agent.receive(timeout: frameWait) { if case .ack(let ack) = $0 { ack } else { nil } }
            try agent.send(.setStatus(SetStatus(requestId: "s-\(customer)", conversation: customer, status: .resolved)))
            _ = try await agent.receive(timeout: frameWait) { if case .conversationUpdated(let update) = $0 { update } else { nil } }
            connection.close()
        }
        try sam.send(.note(Note(clientId: "n1", conversation: "alice", text: "not an answer")))
        // Known times: each customer wrote an hour ago; the first reply came after 1, 2 and 4 minutes, the
        // resolution after 10, 20 and 40 minutes.
        let start = epochMilliseconds() - 3_600_000
        let sqlite = try server.sqlite()
        for (customer, minutes) in [("alice", 1), ("bob", 2), ("carol", 4)] {
            let id = try #require(try await sqlite.int("SELECT id FROM conversations WHERE customer = ?", customer))
            for (seq, offset) in [(1, 0), (2, Int64(minutes) * 60_000), (3, Int64(minutes) * 90_000), (4, Int64(minutes) * 600_000)] {
                try await sqlite.execute("UPDATE messages SET sent_at = ? WHERE conversation_id = ? AND seq = ?", start + offset, id, seq)
            }
        }
        let json = try await runAdmin(["report", "--since", "2h", "--json", "--data-dir", dir])
        #expect(json.status == 0, "\(json.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let agents = try #require(object["agents"] as? [[String: Any]])
        #expect(agents.compactMap { $0["agent"] as? String } == ["kim", "sam"])
        let samLine = try #require(agents.first { $0["agent"] as? String == "sam" })
        #expect(samLine["conversations"] as? Int == 2 && samLine["messages"] as? Int == 4, "the note is not a message to the customer")
        let samFirst = try #require(samLine["firstResponse"] as? [String: Any])
        #expect(samFirst["count"] as? Int == 2 && samFirst["p50Ms"] as? Int == 60_000 && samFirst["p90Ms"] as? Int == 120_000)
        let overall = try #require(object["overall"] as? [String: Any])
        let resolution = try #require(overall["resolution"] as? [String: Any])
        #expect(overall["conversations"] as? Int == 3 && overall["messages"] as? Int == 6)
        #expect(resolution["count"] as? Int == 3 && resolution["p50Ms"] as? Int == 1_200_000 && resolution["p90Ms"] as? Int == 2_400_000)

        let text = try await runAdmin(["report", "--since", "2h", "--data-dir", dir])
        let lines = text.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("AGENT") == true && lines.count == 4, "\(lines)")
        #expect(lines.last?.split(separator: " ").map(String.init) == ["all", "3", "6", "2m", "4m", "20m", "40m"], "\(lines)")
        // Nothing in a window that ended before: an empty report, not an error.
        let quiet = try await runAdmin(["report", "--since", "1s", "--json", "--data-dir", dir])
        let quietObject = try #require(try JSONSerialization.jsonObject(with: Data(quiet.stdout.utf8)) as? [String: Any])
        #expect((quietObject["overall"] as? [String: Any])?["messages"] as? Int == 0)
        #expect(try await runAdmin(["report", "--since", "yesterday-ish", "--data-dir", dir]).status == 64)
        await server.stop()
    }

    private func framesUntilPong(_ connection: ChatConnection) async throws -> [ServerFrame] {
        try connection.send(.ping(requestId: "until"))
        var frames: [ServerFrame] = []
        while true {
            let incoming = try await connection.receive(timeout: frameWait)
            guard let frame = incoming.frame else { continue }
            if case .pong(let id) = frame, id == "until" { return frames }
            frames.append(frame)
        }
    }
}
