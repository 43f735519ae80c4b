import ChatClient
import ChatProtocol
import ChatStore
import Foundation
import Synchronization
import TestProcesses
import Testing
import Thumbnailer

/// The agent's `chat-client` on a terminal that draws sixel: `script(1)` gives it a pseudo-terminal and the test
/// plays an `xterm -ti vt340` (answers its probe, reads every byte it draws, types into it).
@Suite(.serialized) struct SixelEndToEndTests {
    @Test(.timeLimit(.minutes(2))) func anImageAttachmentIsDrawnAsASixelPictureInTheChat() async throws {
        let server = try builtExecutable("chat-server")
        let client = try builtExecutable("chat-client")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chat-sixel-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let tokens = SQLiteTokenStore(database: try ChatDatabase(path: DataDirectory(directory).databasePath))
        let aliceToken = try await tokens.create(username: "alice", role: .customer).token
        let samToken = try await tokens.create(username: "sam", role: .agent).token
        let child = try await offPool { try ServerProcess(binary: server, directory: directory, arguments: ["--durability", "normal"]) }
        defer { child.kill() }
        let url = "ws://127.0.0.1:\(child.port)/ws"

        // The customer sends a 160x96 picture before the agent starts.
        let alice = ChatConnection(url: url, bearer: aliceToken)
        _ = try await alice.hello(Hello(user: "alice"))
        let done = try await alice.upload(.bytes([UInt8](TestImages.png(width: 160, height: 96))), name: "photo.png")
        try alice.send(.send(Send(clientId: "photo", text: "here is the photo", attachments: [AttachmentReference(uploadId: done.uploadId)])))
        _ = try await alice.receive(timeout: frameWait) { if case .ack(let ack) = $0 { ack } else { nil } }
        alice.close()

        // 120x40 cells of 10x20 pixels, 256 colour registers, DA1 with 4 (sixel): what xterm -ti vt340 answers.
        let answers = "\u{1B}[6;20;10t\u{1B}[4;800;1200t\u{1B}[?1;0;256S\u{1B}[?63;1;2;4;6;9;15;16;22;28c"
        let terminal = try ScriptTerminal(
            command: "stty rows 40 cols 120 && exec \(client) sam \(samToken) --server \(url) --log-file \(directory)/agent.log",
            probeAnswer: Array(answers.utf8))
        defer { terminal.stop() }
        try await terminal.waitFor("the agent online") { $0.contains("online") && $0.contains("sam") }
        #expect(terminal.probeAnswered, "the client asked the terminal what it can do")
        terminal.type("/switch alice\r")
        let screen = try await terminal.waitFor("a sixel picture") { text in
            guard let start = text.range(of: "\u{1B}P", options: .backwards) else { return false }
            return text[start.upperBound...].contains("\u{1B}\\")
        }

        let bytes = Array(screen.utf8)
        let dcs = try #require(bytes.ranges(of: [0x1B, 0x50]).last)
        let end = try #require(bytes[dcs.upperBound...].firstRange(of: [0x1B, 0x5C]))
        let sixel = Array(bytes[dcs.lowerBound..<end.upperBound])
        // Raster attributes: square pixels, 160 wide, 96 high (five 20-pixel rows hold 96 = 16 bands of 6).
        let text = String(decoding: sixel, as: UTF8.self)
        #expect(text.contains("q\"1;1;160;96"), "raster attributes in \(text.prefix(40).debugDescription)")
        // Drawn with the cursor hidden: the last cursor command before the picture hides it.
        let before = Array(bytes[..<dcs.lowerBound])
        let hidden = before.ranges(of: Array("\u{1B}[?25l".utf8)).last?.lowerBound ?? -1
        let shown = before.ranges(of: Array("\u{1B}[?25h".utf8)).last?.lowerBound ?? -1
        #expect(hidden > shown, "the cursor is hidden while the picture is drawn")
        #expect(screen.contains("[1] ") && screen.contains("photo.png"), "the card is shown above the preview")

        // Decoded by libsixel, the picture is the customer's (through the server's JPEG thumbnail and 256 colours).
        let sixelPath = directory + "/preview.six", pngPath = directory + "/preview.png"
        try Data(sixel).write(to: URL(fileURLWithPath: sixelPath))
        let decoded = try await runTool("/usr/bin/env", ["sixel2png", "-i", sixelPath, "-o", pngPath])
        #expect(decoded.status == 0, "sixel2png: \(decoded.stderr)")
        let image = try Thumbnailer().decode([UInt8](try Data(contentsOf: URL(fileURLWithPath: pngPath))))
        #expect(image.width == 160 && image.height == 96)
        var squaredError = 0.0
        for y in 0..<image.height {
            for x in 0..<image.width {
                let expected = [x * 255 / 159, y * 255 / 95, 96]
                for channel in 0..<3 {
                    let difference = Double(Int(image.pixels[(y * image.width + x) * 4 + channel]) - expected[channel])
                    squaredError += difference * difference
                }
            }
        }
        let psnr = 10 * log10(255 * 255 / max(1e-9, squaredError / Double(image.width * image.height * 3)))
        #expect(psnr >= 30, "PSNR of the drawn picture against the sent one: \(psnr) dB")
    }
}

/// A command on a pseudo-terminal made by `script(1)`, with the test as the terminal: every byte the command
/// writes is kept, and the graphics probe is answered from the reading thread the moment it arrives.
final class ScriptTerminal: Sendable {
    private struct State {
        var output: [UInt8] = []
        var answered = false
    }

    private let process: Process
    private let input: FileHandle
    private let state = Mutex(State())

    init(command: String, probeAnswer: [UInt8]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/script")
        process.arguments = ["--quiet", "--flush", "--echo", "never", "--return", "--command", command, "/dev/null"]
        var environment = ProcessInfo.processInfo.environment
        for name in ["TMUX", "NO_COLOR", "STY"] { environment[name] = nil }
        environment["TERM"] = "xterm-256color"
        environment["SWIFT_BACKTRACE"] = "interactive=no"
        // Answers come at once, but a busy test machine may start the client late in its 200 ms budget.
        environment["CHAT_PROBE_TIMEOUT_MS"] = "10000"
        process.environment = environment
        let stdin = Pipe(), stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stdout
        try process.run()
        self.process = process
        input = stdin.fileHandleForWriting
        let reader = stdout.fileHandleForReading
        Thread { [self] in read(reader, answeringProbeWith: probeAnswer) }.start()
    }

    /// Keeps the output; answers the probe's last query (DA1) the moment it arrives.
    private func read(_ reader: FileHandle, answeringProbeWith answer: [UInt8]) {
        let request = Array("\u{1B}[c".utf8)
        while true {
            let data = reader.availableData
            if data.isEmpty { return }
            let reply = state.withLock { state -> Bool in
                state.output += data
                guard !state.answered, state.output.firstRange(of: request) != nil else { return false }
                state.answered = true
                return true
            }
            if reply { try? input.write(contentsOf: answer) }
        }
    }

    var probeAnswered: Bool { state.withLock { $0.answered } }

    func type(_ text: String) { try? input.write(contentsOf: Data(text.utf8)) }

    /// Waits until everything written so far satisfies `condition`, and returns it as text.
    @discardableResult
    func waitFor(_ what: String, timeout: Duration = .seconds(30), _ condition: (String) -> Bool) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        var text = ""
        while ContinuousClock.now < deadline {
            text = String(decoding: state.withLock { $0.output }, as: UTF8.self)
            if condition(text) { return text }
            try await Task.sleep(for: .milliseconds(100))
        }
        let status = process.isRunning ? "running" : "exited with \(process.terminationStatus)"
        throw TestFailure("timed out waiting for \(what) (script \(status), probe answered: \(probeAnswered)); "
                          + "the terminal got \(text.utf8.count) bytes:\n\(text.suffix(3000).debugDescription)")
    }

    /// Ctrl-C as a user would, then the hard way.
    func stop() {
        type("\u{3}")
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning { process.terminate() }
        try? input.close()
    }
}
