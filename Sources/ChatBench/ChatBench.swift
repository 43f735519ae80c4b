import ArgumentParser
import ChatClient
import ChatProtocol
import ChatStore
import Foundation
import Histogram
import Logging

/// `chat-bench`: load generator over real WebSockets against a `chat-server` (or the Python peer) that it starts on
/// a temporary data directory, with its own tokens. Prints throughput, end-to-end latency percentiles and the
/// server's CPU and memory. See BENCHMARKS.md.
@main
struct ChatBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat-bench",
        abstract: "Load generator for chat-server: throughput, latency percentiles, server CPU and memory.")

    @Option(help: "Connected customers, each sending messages.")
    var customers = 500

    @Option(help: "Connected agents, each receiving every customer message.")
    var agents = 5

    @Option(help: "Total messages per second (open loop). 0 means closed loop: as fast as acks come back.")
    var rate = 0

    @Option(help: "Messages each customer keeps in flight in closed-loop mode.")
    var window = 4

    @Option(help: "Seconds of measurement (after one second of warm-up).")
    var duration = 10.0

    @Option(help: "Open this many idle connections and report server memory per connection instead of a load run.")
    var idle: Int?

    @Option(help: "Server to use: start chat-server from this path (default: next to chat-bench).")
    var server: String?

    @Option(help: "Server durability (full or normal).")
    var durability = "full"

    @Option(help: "Bytes of text per message (at least 24).")
    var messageBytes = 64

    @Option(help: "Run against a peer instead of chat-server: 'python' (Benchmarks/peer/server.py, the original design's stack).")
    var peer: String?

    mutating func run() async throws {
        raiseFileLimit()
        var logger = Logger(label: "chat-bench")
        logger.logLevel = .error
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chat-bench-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }

        let tokens: TokenIssuer
        let child: ServerProcess
        switch peer {
        case nil:
            let binary = server ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
                .appendingPathComponent("chat-server").path
            tokens = .chatServer(TokenStore(database: try ChatDatabase(path: directory + "/chat.sqlite", durability: .normal)))
            child = try ServerProcess(executable: binary, arguments: [
                "--port", "0", "--data-dir", directory, "--log-level", "notice", "--durability", durability,
                "--rate", "1000000", "--burst", "1000000", "--outbound-buffer", "65536"])
        case "python":
            let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
                .appendingPathComponent("../../Benchmarks/peer/server.py").standardized.path
            let database = directory + "/peer.sqlite"
            tokens = .peer(try PeerTokens(path: database))
            child = try ServerProcess(executable: "/usr/bin/env", arguments: ["python3", script, "--port", "0", "--db", database])
        default:
            throw ValidationError("--peer: only 'python' is known")
        }
        defer { child.stop() }
        let url = "ws://127.0.0.1:\(child.port)/ws"
        print("\(peer ?? "chat-server") pid \(child.pid) on \(url)\(peer == nil ? ", durability \(durability)" : "")")

        if let idle {
            try await idleConnections(idle, url: url, tokens: tokens, child: child, logger: logger)
        } else {
            try await load(url: url, tokens: tokens, child: child, logger: logger)
        }
    }

    // MARK: Idle connections

    private func idleConnections(_ count: Int, url: String, tokens: TokenIssuer, child: ServerProcess, logger: Logger) async throws {
        let token = try await tokens.make("idle", role: .customer)
        let before = child.residentBytes()
        var connections: [ChatConnection] = []
        connections.reserveCapacity(count)
        let started = ContinuousClock.now
        for start in stride(from: 0, to: count, by: 200) {
            let batch = (start..<min(start + 200, count)).map { _ in ChatConnection(url: url, bearer: token, logger: logger) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for connection in batch {
                    group.addTask { _ = try await connection.hello(Hello(lastSeq: 0), timeout: .seconds(60)) }
                }
                try await group.waitForAll()
            }
            connections += batch
        }
        try await Task.sleep(for: .seconds(2))
        let after = child.residentBytes()
        let perConnection = Double(after - before) / Double(count)
        print(String(format: "idle connections: %d opened in %.1f s", count, (ContinuousClock.now - started).inSeconds))
        print(String(format: "server RSS: %.1f MiB before, %.1f MiB with %d connections: %.1f KiB per connection",
                     Double(before) / 1_048_576, Double(after) / 1_048_576, count, perConnection / 1024))
        for connection in connections { connection.close() }
    }

    // MARK: Load

    private func load(url: String, tokens: TokenIssuer, child: ServerProcess, logger: Logger) async throws {
        var agentTokens: [String] = []
        for index in 0..<agents { agentTokens.append(try await tokens.make("agent\(index)", role: .agent)) }
        var customerTokens: [String] = []
        for index in 0..<customers { customerTokens.append(try await tokens.make("customer\(index)", role: .customer)) }

        let clock = ContinuousClock()
        let origin = clock.now
        let stats = Stats()
        let agentConnections = try await connectAll(agentTokens, url: url, logger: logger, hello: Hello())
        let customerConnections = try await connectAll(customerTokens, url: url, logger: logger, hello: Hello(lastSeq: 0))
        print("connected \(agents) agents and \(customers) customers")

        let measureFrom = origin.duration(to: clock.now) + .seconds(1)
        let measureUntil = measureFrom + .seconds(duration)
        let padding = String(repeating: "x", count: max(0, messageBytes - 24))

        let cpuBefore = LockedValue<Double?>(nil)
        await withTaskGroup(of: Void.self) { group in
            for connection in agentConnections {
                group.addTask {
                    var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000)
                    var delivered = 0
                    while true {
                        guard let incoming = try? await connection.receive(timeout: .seconds(3)) else { break }
                        guard FrameScan.contains(FrameScan.messageType, in: incoming.text), let sent = Self.sentNanos(in: incoming.text) else { continue }
                        let now = origin.duration(to: clock.now)
                        let sentAt = Duration.nanoseconds(sent)
                        guard sentAt >= measureFrom, sentAt < measureUntil else {
                            if now > measureUntil + .seconds(2) { break }
                            continue
                        }
                        _ = histogram.record(UInt64(max(0, (now - sentAt).inNanoseconds / 1000)))
                        delivered += 1
                    }
                    await stats.addAgent(histogram: histogram, delivered: delivered)
                }
            }
            for (index, connection) in customerConnections.enumerated() {
                group.addTask { [rate, window, customers] in
                    var sequence = 0
                    // The send time travels in the text (for agents) and in the clientId (for the ack).
                    func sendOne(at scheduled: Duration) {
                        sequence += 1
                        let nanos = scheduled.inNanoseconds
                        connection.sendText(#"{"type":"send","clientId":"\#(index)-\#(sequence)-\#(nanos)","text":"t=\#(nanos);\#(padding)"}"#)
                    }
                    /// Counts acks of messages sent in the measurement window; nil when the connection went quiet.
                    func receiveAck(acked: inout Int, errors: inout Int) async -> Bool? {
                        guard let incoming = try? await connection.receive(timeout: .seconds(3)) else { return nil }
                        if FrameScan.contains(FrameScan.ackType, in: incoming.text) {
                            if let sent = Self.ackSentNanos(incoming.text).map(Duration.nanoseconds), sent >= measureFrom, sent < measureUntil {
                                acked += 1
                            }
                            return true
                        }
                        if FrameScan.contains(FrameScan.errorType, in: incoming.text) {
                            errors += 1
                            return true
                        }
                        return false
                    }
                    var acked = 0
                    var errors = 0
                    if rate == 0 {
                        var inFlight = 0
                        while origin.duration(to: clock.now) < measureUntil {
                            while inFlight < window {
                                sendOne(at: origin.duration(to: clock.now))
                                inFlight += 1
                            }
                            guard let answered = await receiveAck(acked: &acked, errors: &errors) else { break }
                            if answered { inFlight -= 1 }
                        }
                    } else {
                        // Open loop: each customer sends at rate/customers per second on a fixed schedule; latency is
                        // measured from the scheduled time, so a stalled server cannot hide its delay.
                        let interval = Duration.seconds(Double(customers) / Double(rate))
                        let receiver = Task {
                            var acked = 0
                            var errors = 0
                            while await receiveAck(acked: &acked, errors: &errors) != nil {}
                            return (acked, errors)
                        }
                        var next = Duration.seconds(Double(index) / Double(rate))
                        while next < measureUntil {
                            let now = origin.duration(to: clock.now)
                            if next > now { try? await Task.sleep(for: next - now) }
                            sendOne(at: next)
                            next += interval
                        }
                        (acked, errors) = await receiver.value
                    }
                    await stats.addCustomer(acked: acked, errors: errors)
                }
            }
            group.addTask {
                try? await Task.sleep(for: measureFrom - origin.duration(to: clock.now))
                cpuBefore.set(child.cpuSeconds())
            }
            await group.waitForAll()
        }
        let cpuAfter = child.cpuSeconds()
        let report = await stats.report()
        let serverCPU = cpuBefore.get().map { (cpuAfter - $0) / duration } ?? 0
        print(String(format: "mode: %@, %d customers, %d agents, %.0f s measured, %d-byte messages",
                     rate == 0 ? "closed loop (window \(window))" : "open loop \(rate) msg/s", customers, agents, duration, messageBytes))
        print(String(format: "stored (acked): %.0f msg/s   delivered to agents: %.0f msg/s   errors: %d",
                     Double(report.acked) / duration, Double(report.delivered) / duration, report.errors))
        let h = report.histogram
        func ms(_ percentile: Double) -> String { String(format: "%.2f", Double(h.valueAtPercentile(percentile)) / 1000) }
        print("end-to-end latency ms: p50 \(ms(50))  p90 \(ms(90))  p99 \(ms(99))  p99.9 \(ms(99.9))  max \(String(format: "%.2f", Double(h.max) / 1000))  (n=\(h.totalCount))")
        print(String(format: "server: CPU %.0f%% of one core, peak RSS %.1f MiB", serverCPU * 100, Double(child.peakResidentBytes()) / 1_048_576))
        for connection in agentConnections + customerConnections { connection.close() }
    }

    private func connectAll(_ tokens: [String], url: String, logger: Logger, hello: Hello) async throws -> [ChatConnection] {
        var connections: [ChatConnection] = []
        for start in stride(from: 0, to: tokens.count, by: 100) {
            let batch = tokens[start..<min(start + 100, tokens.count)].map {
                ChatConnection(url: url, bearer: $0, decodeFrames: false, logger: logger)
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for connection in batch {
                    group.addTask {
                        try connection.send(.hello(hello))
                        // Wait for synced: the connection is live from then on.
                        while true {
                            let incoming = try await connection.receive(timeout: .seconds(30))
                            if incoming.text.contains(#""type":"synced""#) { break }
                        }
                    }
                }
                try await group.waitForAll()
            }
            connections += batch
        }
        return connections
    }

    /// The send time the bench put at the start of the message text: `t=<nanoseconds>;`.
    static func sentNanos(in text: String) -> Int64? {
        FrameScan.number(after: FrameScan.textMarker, in: text)
    }

    /// The send time from the clientId `<customer>-<n>-<nanoseconds>` in an ack.
    static func ackSentNanos(_ text: String) -> Int64? {
        FrameScan.lastNumber(inValueAfter: FrameScan.clientIdMarker, in: text)
    }
}
