@_spi(Testing) import ChatStore
import Foundation
import TestProcesses
import Testing

/// The client's attachment and resend paths end to end: a real `chat-server`, the customer's `chat-client` behind a
/// proxy that can drop its connection, the agent's `chat-client` connected directly, both in tmux panes.
@Suite(.serialized) struct AttachmentEndToEndTests {
    @Test(.timeLimit(.minutes(3))) func refusedLinesAreResentAnUploadResumesAfterADropAndSaveAndExpiryShow() async throws {
        let server = try builtExecutable("chat-server")
        let client = try builtExecutable("chat-client")
        let admin = try builtExecutable("chat-admin")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chat-attach-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let database = DataDirectory(directory).databasePath
        let tokens = SQLiteTokenStore(database: try ChatDatabase(path: database))
        let aliceToken = try await tokens.create(username: "alice", role: .customer).token
        let samToken = try await tokens.create(username: "sam", role: .agent).token

        // A rate low enough for a quick typist to hit: 4 frames a second, 8 at once.
        let child = try await offPool {
            try ServerProcess(binary: server, directory: directory, arguments: ["--durability", "normal", "--rate", "4", "--burst", "8"])
        }
        defer { child.kill() }
        let proxy = try LoopbackProxy(upstreamPort: child.port)
        defer { proxy.stop() }
        let tmux = Tmux()
        defer { tmux.kill() }
        let customerCommand = "env SWIFT_BACKTRACE=interactive=no CHAT_CLIENT_LOG=\(directory)/customer.log \(client) alice "
            + "\(aliceToken) --server ws://127.0.0.1:\(proxy.port)/ws --graphics blocks"
        try await offPool {
            try tmux.start("env SWIFT_BACKTRACE=interactive=no CHAT_CLIENT_LOG=\(directory)/agent.log \(client) sam \(samToken) "
                           + "--server ws://127.0.0.1:\(child.port)/ws --graphics blocks")
            try tmux.split(customerCommand)
        }
        let agent = "0.0", customer = "0.1"
        try await tmux.waitFor(agent, "agent online", timeout: .seconds(30)) { $0.contains("● online") && $0.contains("sam (agent)") }
        try await tmux.waitFor(customer, "customer online", timeout: .seconds(30)) { $0.contains("● online") && $0.contains("alice │") }
        try await offPool { try tmux.keys(agent, ["/switch alice", "Enter"]) }
        try await tmux.waitFor(agent, "alice's conversation open") { $0.contains("[alice] >") }

        // Twelve lines typed in one go, over the burst: the refused ones wait for the server's hint and go again,
        // each is stored once, in the order typed.
        let lines = (1...12).map { "quick line \($0)" }
        try await offPool { try tmux.keys(customer, lines.flatMap { [$0, "Enter"] }) }
        try await tmux.waitFor(customer, "every quick line stored", timeout: .seconds(30), history: 100) { screen in
            lines.allSatisfy { screen.contains("\($0) ✓") }
        }
        let scrollback = try await offPool { try tmux.capture(customer, history: 100) }
        #expect(scrollback.components(separatedBy: "will resend").count == 2,
                "the server refused some lines for the rate, so the resend path ran; one notice says so")
        let stored = try await SQLiteMessageStore(database: try ChatDatabase(path: database)).history(customer: "alice", limit: 100).messages
        #expect(stored.map(\.text) == lines, "each line stored once, in the order typed")

        // An upload through a slow link, cut half way: the client reconnects and resumes from the server's offset.
        let fileSize = 3 << 20
        var generator = SystemRandomNumberGenerator()
        let original = Data((0..<fileSize).map { _ in UInt8.random(in: 0...255, using: &generator) })
        try original.write(to: URL(fileURLWithPath: directory + "/report.bin"))
        proxy.setThrottle(bytesPerSecond: 1 << 20)
        // Half the file goes through, then no more until the cut: the upload cannot finish first on a slow machine.
        proxy.hold(atBytes: 3 << 19)
        try await tmux.type(customer, "/attach \(directory)/report.bin")
        try await tmux.waitFor(customer, "progress bar", timeout: .seconds(20)) { $0.contains("↑ report.bin") && $0.contains("%") }
        let deadline = ContinuousClock.now + .seconds(30)
        while (proxy.upstreamBytes.last ?? 0) < 3 << 19, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        let connectionsBefore = proxy.upstreamBytes.count
        try #require((proxy.upstreamBytes.last ?? 0) >= 3 << 19, "half the file went through before the cut")
        proxy.cut()
        proxy.hold(atBytes: nil)
        proxy.setThrottle(bytesPerSecond: nil)
        do {
            // (Not the sniffed type: random bytes are sometimes taken for something, e.g. a DOS executable.)
            try await tmux.waitFor(agent, "the attachment after the resumed upload", timeout: .seconds(60)) {
                $0.contains("[1] report.bin") && $0.contains("3.0 MB")
            }
        } catch {
            let screen = (try? await offPool { try tmux.capture(customer) }) ?? ""
            throw TestFailure("\(error)\nproxy connections, bytes up: \(proxy.upstreamBytes); customer's screen:\n\(screen)")
        }
        let after = proxy.upstreamBytes.dropFirst(connectionsBefore)
        #expect(!after.isEmpty, "the client reconnected through the proxy")
        #expect(after.reduce(0, +) + (256 << 10) < fileSize, "resumed: \(after.reduce(0, +)) bytes sent after the cut, of \(fileSize)")

        // `/save 1 PATH` downloads the very bytes that were sent.
        try await tmux.type(agent, "/save 1 \(directory)/saved.bin")
        try await tmux.waitFor(agent, "saved notice") { $0.contains("saved [1] to \(directory)/saved.bin") }
        #expect(try Data(contentsOf: URL(fileURLWithPath: directory + "/saved.bin")) == original)

        // An operator prunes large files (the attachment made to look two hours old, past the grace period): saving
        // again says the file expired, and a client that starts afresh shows the card as expired.
        // Raw SQL on the file itself, as an operator's script would (busy timeout: the server is writing too).
        let sqlite = try RawSQLite(path: database)
        try await sqlite.execute("UPDATE blobs SET created_at = created_at - 7200000, last_referenced_at = last_referenced_at - 7200000")
        let blobs = try await sqlite.strings("SELECT hash FROM blobs")
        try #require(blobs.count == 1)
        let enumerator = FileManager.default.enumerator(atPath: directory + "/media")
        while let path = enumerator?.nextObject() as? String {
            try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-7_200)],
                                                  ofItemAtPath: directory + "/media/" + path)
        }
        let pruned = try await runTool(admin, ["media", "prune", "--larger-than", "1MiB", "--json", "--data-dir", directory])
        #expect(pruned.status == 0, "prune failed: \(pruned.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(pruned.stdout)) as? [String: Any]
        #expect(report?["removed"] as? [String] == blobs, "prune removed the attachment's blob: \(pruned.output)")
        try await tmux.type(agent, "/save 1 \(directory)/again.bin")
        try await tmux.waitFor(agent, "expired on save") { $0.contains("could not save [1]: the file has expired on the server") }
        #expect(!FileManager.default.fileExists(atPath: directory + "/again.bin"))
        _ = try await offPool { try tmux.run(["respawn-pane", "-k", "-t", "chat:\(customer)", customerCommand]) }
        try await tmux.waitFor(customer, "expired card after a fresh start", timeout: .seconds(30)) { screen in
            screen.split(separator: "\n").contains { $0.contains("] report.bin") && $0.contains("expired") }
        }
    }
}
