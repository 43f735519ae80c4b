import ChatProtocol
import ChatStore
import Foundation
import TestProcesses
import Testing

/// The agent's workflow commands in the console: a real `chat-server` and `chat-client`s in tmux panes, keys typed
/// with `send-keys`, screens read with `capture-pane`. The customer's pane must never show any of it.
@Suite(.serialized) struct WorkflowConsoleTests {
    @Test(.timeLimit(.minutes(3))) func takeNoteCannedSnoozeResolveAndViewFromTheAgentsConsole() async throws {
        let server = try builtExecutable("chat-server")
        let client = try builtExecutable("chat-client")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chat-workflow-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let database = try ChatDatabase(path: DataDirectory(directory).databasePath)
        let aliceToken = try await database.tokens.create(username: "alice", role: .customer).token
        let samToken = try await database.tokens.create(username: "sam", role: .agent).token
        try await SQLiteCannedReplyStore(database: database).save(CannedReply(name: "greeting", text: "Hello {customer}, this is {agent}."))

        let child = try await offPool { try ServerProcess(binary: server, directory: directory, arguments: ["--durability", "normal"]) }
        defer { child.kill() }
        let tmux = Tmux()
        defer { tmux.kill() }
        let url = "ws://127.0.0.1:\(child.port)/ws"
        try await offPool {
            try tmux.start("env SWIFT_BACKTRACE=interactive=no \(client) sam \(samToken) --server \(url) --graphics blocks")
            try tmux.split("env SWIFT_BACKTRACE=interactive=no \(client) alice \(aliceToken) --server \(url) --graphics blocks")
        }
        let agent = "0.0", customer = "0.1"
        try await tmux.waitFor(agent, "agent online", timeout: .seconds(30)) { $0.contains("● online") && $0.contains("sam (agent)") }
        try await tmux.waitFor(customer, "customer online", timeout: .seconds(30)) { $0.contains("● online") }
        try await tmux.type(customer, "my parcel arrived crushed")
        try await tmux.waitFor(agent, "the customer's message") { $0.contains("alice(1)") }

        try await tmux.type(agent, "/switch alice")
        try await tmux.waitFor(agent, "conversation open, open and unassigned") { $0.contains("alice: open, unassigned") }
        try await tmux.type(agent, "/take")
        try await tmux.waitFor(agent, "taken") { $0.contains("── sam took the conversation ──") && $0.contains("alice: open, yours") }

        try await tmux.type(agent, "/note refund approved by finance")
        try await tmux.waitFor(agent, "the note, marked") { $0.contains("[note, agents only]: refund approved by finance ✓") }

        // Tab completes the canned reply's name; its placeholders are filled in.
        try await offPool { try tmux.keys(agent, ["/canned gr", "Tab", "Enter"]) }
        try await tmux.waitFor(customer, "the canned reply, filled in") { $0.contains("sam [agent]: Hello alice, this is sam.") }

        try await tmux.type(agent, "/snooze 2h")
        try await tmux.waitFor(agent, "snoozed") { $0.contains("alice: snoozed until") && $0.contains("sam snoozed the conversation until") }
        try await tmux.type(agent, "/resolve")
        try await tmux.waitFor(agent, "resolved") { $0.contains("alice: resolved, yours") && $0.contains("── sam resolved the conversation ──") }

        // The customer writes again: open again by itself.
        try await tmux.type(customer, "one more thing")
        try await tmux.waitFor(agent, "reopened by the customer") { $0.contains("alice: one more thing") && $0.contains("alice: open, yours") }

        // /view unassigned leaves alice (assigned to sam) out of the roster; /view all brings her back.
        try await tmux.type(agent, "/view unassigned")
        try await tmux.waitFor(agent, "unassigned view") { $0.contains("view: unassigned") && !$0.contains("►alice") }
        try await tmux.type(agent, "/view all")
        try await tmux.waitFor(agent, "every conversation") { !$0.contains("view: unassigned") && $0.contains("►alice") }

        // Nothing of the workflow ever reached the customer's screen, and her messages are numbered without gaps.
        let customerScreen = try await offPool { try tmux.capture(customer, history: 200) }
        for secret in ["refund approved", "took the conversation", "snoozed", "resolved", "note"] {
            #expect(!customerScreen.contains(secret), "the customer saw \"\(secret)\":\n\(customerScreen)")
        }
        #expect(customerScreen.contains("Hello alice, this is sam."))
    }
}
