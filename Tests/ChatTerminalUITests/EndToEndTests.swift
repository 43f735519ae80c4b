import ChatStore
import Foundation
import TestProcesses
import Testing

/// A real `chat-server` and two `chat-client`s in tmux panes: keys typed with `send-keys`, screens read with
/// `capture-pane`.
@Suite(.serialized) struct EndToEndTests {
    @Test(.timeLimit(.minutes(3))) func customerAndAgentChatThroughTmuxAndSurviveAServerRestart() async throws {
        let server = try builtExecutable("chat-server")
        let client = try builtExecutable("chat-client")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chat-tui-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let tokens = SQLiteTokenStore(database: try ChatDatabase(path: DataDirectory(directory).databasePath))
        let aliceToken = try await tokens.create(username: "alice", role: .customer).token
        let samToken = try await tokens.create(username: "sam", role: .agent).token

        var child = try await offPool { try ServerProcess(binary: server, directory: directory, arguments: ["--durability", "normal"]) }
        let port = child.port
        let tmux = Tmux()
        defer { tmux.kill() }
        let url = "ws://127.0.0.1:\(port)/ws"
        let agentLog = directory + "/agent.log", customerLog = directory + "/customer.log"
        try await offPool {
            try tmux.start("env SWIFT_BACKTRACE=interactive=no CHAT_CLIENT_LOG=\(agentLog) \(client) sam \(samToken) --server \(url) --graphics blocks 2>>\(directory)/agent.err")
            try tmux.split("env SWIFT_BACKTRACE=interactive=no CHAT_CLIENT_LOG=\(customerLog) \(client) alice \(aliceToken) --server \(url) --graphics blocks")
        }
        let agent = "0.0", customer = "0.1"
        try await tmux.waitFor(agent, "agent online", timeout: .seconds(30)) { $0.contains("● online") && $0.contains("sam (agent)") }
        try await tmux.waitFor(customer, "customer online", timeout: .seconds(30)) { $0.contains("● online") && $0.contains("alice │") }

        // A customer message reaches the agent, with the unread count in the status line.
        try await tmux.type(customer, "Hello, my order 注文 is late")
        try await tmux.waitFor(customer, "own message stored") { $0.contains("Hello, my order 注文 is late ✓") }
        try await tmux.waitFor(agent, "unread count") { $0.contains("unread 1") && $0.contains("alice(1)") }

        // The agent opens the conversation (Tab completes the name) and replies.
        try await offPool { try tmux.keys(agent, ["/switch al", "Tab", "Enter"]) }
        try await tmux.waitFor(agent, "history with the message") {
            $0.contains("alice: Hello, my order 注文 is late") && $0.contains("[alice] >") && $0.contains("unread 0")
        }
        try await tmux.waitFor(customer, "read receipt") { $0.contains("Hello, my order 注文 is late ✓✓ read") }
        try await tmux.type(agent, "Let me check that for you")
        try await tmux.waitFor(customer, "agent reply") { $0.contains("sam [agent]: Let me check that for you") }

        // An image attachment shows a half-block preview in the agent's pane.
        let png = directory + "/picture.png"
        try TestImages.png(width: 48, height: 32).write(to: URL(fileURLWithPath: png))
        try await tmux.type(customer, "/attach \(png)")
        try await tmux.waitFor(agent, "attachment card and preview", timeout: .seconds(20)) { screen in
            screen.contains("] picture.png") && screen.contains("image/png")
                && screen.split(separator: "\n").filter { $0.contains("▀") || $0.contains("▄") }.count >= 3
        }

        // The server dies mid-conversation; both sides type while it is down; nothing is lost or doubled.
        try await offPool { [child] in child.kill() }
        try await tmux.waitFor(customer, "offline state") { $0.contains("offline") }
        try await tmux.type(customer, "sent while the server was down")
        try await tmux.type(agent, "agent reply while down")
        try await tmux.waitFor(customer, "queued message") { $0.contains("sent while the server was down … sending") }
        child = try await offPool { try ServerProcess(binary: server, directory: directory, port: port, arguments: ["--durability", "normal"]) }
        try await tmux.waitFor(agent, "customer's queued message after reconnect", timeout: .seconds(40)) {
            $0.contains("alice: sent while the server was down") && $0.contains("● online")
        }
        try await tmux.waitFor(customer, "agent's queued message after reconnect", timeout: .seconds(40)) {
            $0.contains("sam [agent]: agent reply while down") && $0.contains("sent while the server was down ✓")
        }
        // The open conversation is marked read again after the resync.
        try await tmux.waitFor(agent, "unread back to 0") { $0.contains("unread 0") }
        let stored = try await SQLiteMessageStore(database: try ChatDatabase(path: DataDirectory(directory).databasePath))
            .history(customer: "alice", limit: 100).messages
        for text in ["Hello, my order 注文 is late", "Let me check that for you", "sent while the server was down",
                     "agent reply while down"] {
            #expect(stored.filter { $0.text == text }.count == 1, "\(text) stored exactly once")
        }
        #expect(stored.map(\.seq) == Array(1...stored.count))
        let agentScreen = try await offPool { try tmux.capture(agent) }
        #expect(agentScreen.components(separatedBy: "alice: sent while the server was down").count == 2,
                "shown once on the agent's screen")

        // Ctrl-C gives the terminal back.
        try await offPool { try tmux.keys(customer, ["C-c"]) }
        let deadline = ContinuousClock.now + .seconds(10)
        var dead = ""
        while ContinuousClock.now < deadline {
            dead = try await offPool { try tmux.run(["display-message", "-p", "-t", "chat:\(customer)", "#{pane_dead} #{pane_dead_status}"]) }
            if dead.hasPrefix("1") { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let fields = dead.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        #expect(fields.first == "1", "the client exited after Ctrl-C")
        #expect(fields.count < 2 || fields[1] == "0" || fields[1].isEmpty, "with status 0: \(dead)")
        // It gave the terminal back: the scroll region reset means the shell-visible cursor is below the last line.
        let final = try await offPool { try tmux.capture(customer) }
        #expect(final.contains("sam [agent]: agent reply while down"), "the conversation is left on screen")
        try await offPool { [child] in child.kill() }
        if let crash = try? String(contentsOfFile: directory + "/agent.err", encoding: .utf8), !crash.isEmpty {
            Issue.record("the agent's client wrote to stderr: \(crash.prefix(2000))")
        }
    }
}

// MARK: - Support

/// A private tmux server (its own socket) with one 120x40 window split into two panes.
final class Tmux: Sendable {
    let socket = "chat-tui-\(UUID().uuidString.prefix(8))"
    /// Read by the tmux server when the first command starts it: panes stay (dead) after their command exits, so a
    /// client that dies at once is seen as dead, with its status, instead of vanishing with its pane.
    private let configuration: String

    init() {
        configuration = FileManager.default.temporaryDirectory.appendingPathComponent("tmux-\(socket).conf").path
        try? "set-option -g remain-on-exit on\n".write(toFile: configuration, atomically: true, encoding: .utf8)
    }

    /// Runs a tmux command and returns its output. posix_spawn and waitpid rather than Foundation's Process: the
    /// tmux server that `new-session` forks inherits Process's exit-monitoring descriptor, so Process would never
    /// see the tmux client exit.
    @discardableResult
    func run(_ arguments: [String]) throws -> String {
        let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("tmux-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        var environment = ProcessInfo.processInfo.environment
        environment["TMUX"] = nil
        environment["NO_COLOR"] = nil
        if environment["TERM"] == nil || environment["TERM"] == "dumb" { environment["TERM"] = "xterm-256color" }
        let argv = ["tmux", "-L", socket, "-f", configuration] + arguments
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            cArgs.forEach { free($0) }
            cEnv.forEach { free($0) }
        }
        var pid: pid_t = 0
        let spawned = posix_spawnp(&pid, "tmux", &actions, nil, cArgs, cEnv)
        guard spawned == 0 else { throw TestFailure("cannot run tmux: error \(spawned)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        // WIFEXITED && WEXITSTATUS == 0
        guard status & 0x7F == 0, (status >> 8) & 0xFF == 0 else {
            throw TestFailure("tmux \(arguments.first ?? "") failed (\(status)): \(text)")
        }
        return text
    }

    func start(_ command: String) throws {
        try run(["new-session", "-d", "-s", "chat", "-x", "120", "-y", "40", command])
    }

    func split(_ command: String) throws {
        try run(["split-window", "-t", "chat:0", "-v", command])
    }

    func keys(_ pane: String, _ keys: [String]) throws {
        try run(["send-keys", "-t", "chat:\(pane)"] + keys)
    }

    /// The pane's screen, and with `history` that many lines scrolled off above it.
    func capture(_ pane: String, history: Int = 0) throws -> String {
        try run(["capture-pane", "-p", "-t", "chat:\(pane)"] + (history > 0 ? ["-S", "-\(history)"] : []))
    }

    func type(_ pane: String, _ text: String) async throws {
        try await offPool { [self] in
            try run(["send-keys", "-t", "chat:\(pane)", "-l", text])
            try run(["send-keys", "-t", "chat:\(pane)", "Enter"])
        }
    }

    /// Polls the pane until `condition` holds; fails with the last screen after `timeout`.
    func waitFor(_ pane: String, _ what: String, timeout: Duration = .seconds(15), history: Int = 0,
                 _ condition: @escaping @Sendable (String) -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        var screen = ""
        while ContinuousClock.now < deadline {
            screen = try await offPool { [self] in try capture(pane, history: history) }
            if condition(screen) { return }
            try await Task.sleep(for: .milliseconds(150))
        }
        let state = (try? await offPool { [self] in paneState(pane) }) ?? "unknown"
        throw TestFailure("timed out waiting for \(what) in pane \(pane) (\(state)); screen:\n\(screen)")
    }

    /// Whether the pane's command still runs, and if so what its processes wait on: for failures that show an
    /// empty screen.
    func paneState(_ pane: String) -> String {
        let format = "dead=#{pane_dead} status=#{pane_dead_status} pid=#{pane_pid} command=#{pane_current_command}"
        let summary = ((try? run(["display-message", "-p", "-t", "chat:\(pane)", format])) ?? "no pane")
            .trimmingCharacters(in: .whitespacesAndNewlines)
        guard let pidText = summary.split(separator: " ").first(where: { $0.hasPrefix("pid=") })?.dropFirst(4),
              let pid = Int(pidText) else { return summary }
        var processes: [String] = []
        var queue = [pid]
        while let next = queue.popLast(), processes.count < 8 {
            let proc = "/proc/\(next)"
            let read = { (name: String) in
                ((try? String(contentsOfFile: "\(proc)/\(name)", encoding: .utf8)) ?? "?")
                    .replacingOccurrences(of: "\0", with: " ").trimmingCharacters(in: .whitespacesAndNewlines)
            }
            let state = read("status").split(separator: "\n").first { $0.hasPrefix("State:") } ?? "State: ?"
            // What each thread waits on, counted: a client stuck in a lock shows as threads in futex_wait.
            let threads = ((try? FileManager.default.contentsOfDirectory(atPath: "\(proc)/task")) ?? []).map { read("task/\($0)/wchan") }
            let waits = Dictionary(grouping: threads, by: { $0 }).map { "\($0.key)×\($0.value.count)" }.sorted()
            processes.append("\(next) \(read("cmdline").prefix(80)) \(state) threads: \(waits.joined(separator: ","))")
            queue += read("task/\(next)/children").split(separator: " ").compactMap { Int($0) }
        }
        return ([summary] + processes).joined(separator: "; ")
    }

    /// Quits the clients with Ctrl-C first (the way a user would), then ends the tmux server.
    func kill() {
        for pane in ["0.0", "0.1"] { _ = try? run(["send-keys", "-t", "chat:\(pane)", "C-c"]) }
        Thread.sleep(forTimeInterval: 0.3)
        // kill-server alone can leave the server process behind (it inherits the test runner's descriptors); end
        // it by its pid as well.
        let pid = (try? run(["display-message", "-p", "#{pid}"])).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        _ = try? run(["kill-server"])
        if let pid, pid > 1 { Glibc.kill(pid, SIGKILL) }
        try? FileManager.default.removeItem(atPath: configuration)
    }
}

/// A small PNG written by hand (stored, uncompressed deflate blocks), so the test needs no image library.
enum TestImages {
    static func png(width: Int, height: Int) -> Data {
        var raw: [UInt8] = []
        for y in 0..<height {
            raw.append(0)
            for x in 0..<width {
                raw += [UInt8(x * 255 / max(1, width - 1)), UInt8(y * 255 / max(1, height - 1)), 96]
            }
        }
        var png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        var header: [UInt8] = []
        header += be32(width) + be32(height) + [8, 2, 0, 0, 0]
        png += chunk("IHDR", header)
        png += chunk("IDAT", zlibStored(raw))
        png += chunk("IEND", [])
        return Data(png)
    }

    static func be32(_ v: Int) -> [UInt8] {
        [UInt8((v >> 24) & 0xFF), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)]
    }

    static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let typed = Array(type.utf8) + data
        return be32(data.count) + typed + be32(Int(crc32(typed)))
    }

    static func zlibStored(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]
        var offset = 0
        repeat {
            let length = min(65535, data.count - offset)
            let final: UInt8 = offset + length >= data.count ? 1 : 0
            out += [final, UInt8(length & 0xFF), UInt8(length >> 8), UInt8(~length & 0xFF), UInt8((~length >> 8) & 0xFF)]
            out += data[offset..<(offset + length)]
            offset += length
        } while offset < data.count
        var a: UInt32 = 1, b: UInt32 = 0
        for byte in data { a = (a + UInt32(byte)) % 65521; b = (b + a) % 65521 }
        return out + be32(Int((b << 16) | a))
    }

    static func crc32(_ data: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in data {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = (crc >> 1) ^ (0xEDB8_8320 & (0 &- (crc & 1))) }
        }
        return ~crc
    }
}
