import ArgumentParser
import ChatProtocol
import ChatStore
import ChatStorePostgres
import Foundation
import Logging
import NIOCore

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

    @Option(help: "Event-loop threads of the load generator (it shares the machine with the server it measures).")
    var threads = 1

    @Option(help: "Server to use: start chat-server from this path (default: next to chat-bench).")
    var server: String?

    @Option(help: "Server durability (full or normal).")
    var durability = "full"

    @Option(help: "Run chat-server on this PostgreSQL database (postgres://USER@HOST:PORT/DB) instead of SQLite; tokens are made there.")
    var database: String?

    @Option(help: "Server nodes sharing --database, with the clients split between them in turn (PostgreSQL only).")
    var nodes = 1

    @Option(help: "Bytes of text per message (at least 24).")
    var messageBytes = 64

    @Option(help: "Run against a peer instead of chat-server: 'python' (Benchmarks/peer/server.py, the original design's stack).")
    var peer: String?

    @Option(parsing: .upToNextOption,
            help: "Instead of a load run: time the console redrawing a screen with these photos' sixel previews.")
    var redraw: [String] = []

    @Option(help: "Redraws to time with --redraw.")
    var redraws = 200

    @Option(help: "Instead of a load run: time searches on this SQLite database (see Benchmarks/search.sh).")
    var searchDb: String?

    @Option(help: "With --search-db: the file of words (one a line) queries are drawn from.")
    var searchWords: String?

    @Option(help: "With --search-db: queries to time per kind of searcher.")
    var searchQueries = 2000

    @Flag(help: "Drop the full-text search trigger from the server's new SQLite database before the run (the write path without indexing).")
    var withoutSearchIndex = false

    func validate() throws {
        guard nodes >= 1, nodes == 1 || database != nil else { throw ValidationError("--nodes above 1 needs --database postgres://...") }
    }

    mutating func run() async throws {
        if !redraw.isEmpty {
            try RedrawBenchmark(photos: redraw, runs: redraws).run()
            return
        }
        if let searchDb {
            guard let searchWords else { throw ValidationError("--search-db needs --search-words FILE") }
            try await SearchBenchmark(path: searchDb, wordsPath: searchWords, queries: searchQueries).run()
            return
        }
        raiseFileLimit()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chat-bench-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }

        switch peer {
        case nil:
            let binary = server ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
                .appendingPathComponent("chat-server").path
            let durability = durability
            let arguments = { @Sendable (data: String) in ["--port", "0", "--data-dir", data, "--log-level", "notice", "--durability", durability,
                                                 "--rate", "1000000", "--burst", "1000000", "--outbound-buffer", "\(256 << 20)"] }
            guard let database else {
                let tokens = SQLiteTokenStore(database: try ChatDatabase(path: DataDirectory(directory).databasePath, durability: .normal))
                if withoutSearchIndex { try dropSearchTrigger(DataDirectory(directory).databasePath) }
                return try await measure(tokens: .chatServer(tokens), children: [try ServerProcess(executable: binary, arguments: arguments(directory))])
            }
            var logger = Logger(label: "chat-bench")
            logger.logLevel = .error
            let command = self
            try await PostgresDatabase.withDatabase(url: database, logger: logger) { store in
                var children: [ServerProcess] = []
                defer { for child in children { child.stop() } }
                for node in 0..<command.nodes {
                    let data = directory + "/node\(node)"
                    try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
                    children.append(try ServerProcess(executable: binary, arguments: arguments(data) + ["--database", database]))
                }
                try await command.measure(tokens: .chatServer(store.storage.tokens), children: children)
            }
        case "python":
            let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
                .appendingPathComponent("../../Benchmarks/peer/server.py").standardized.path
            let database = directory + "/peer.sqlite"
            let tokens = TokenIssuer.peer(try PeerTokens(path: database))
            try await measure(tokens: tokens, children: [try ServerProcess(executable: "/usr/bin/env",
                                                                           arguments: ["python3", script, "--port", "0", "--db", database])])
        default:
            throw ValidationError("--peer: only 'python' is known")
        }
    }

    /// Runs the load (or idle) measurement against the started servers (several nodes of one cluster, or one), and
    /// stops them.
    private func measure(tokens: TokenIssuer, children: [ServerProcess]) async throws {
        defer { for child in children { child.stop() } }
        let backend = peer == nil ? ", durability \(durability)\(database == nil ? "" : ", PostgreSQL")" : ""
        for child in children {
            print("\(peer ?? "chat-server") pid \(child.pid) on ws://127.0.0.1:\(child.port)/ws\(backend)")
        }

        let loops = try await LoadLoops(threads: threads)
        do {
            if let idle, let child = children.first {
                try await idleConnections(idle, port: child.port, tokens: tokens, child: child, loops: loops)
            } else {
                try await load(tokens: tokens, children: children, loops: loops)
            }
        } catch {
            try? await loops.shutdown()
            throw error
        }
        try await loops.shutdown()
    }

    // MARK: Idle connections

    private func idleConnections(_ count: Int, port: Int, tokens: TokenIssuer, child: ServerProcess, loops: LoadLoops) async throws {
        let token = try await tokens.make("idle", role: .customer)
        let before = child.residentBytes()
        let started = ContinuousClock.now
        let connections = try await openAll(Array(repeating: token, count: count), as: { _ in .idle }, ports: [port],
                                            hello: Hello(lastSeq: 0), loops: loops)
        try await Task.sleep(for: .seconds(2))
        let after = child.residentBytes()
        let perConnection = Double(after - before) / Double(count)
        print(String(format: "idle connections: %d opened in %.1f s", count, (ContinuousClock.now - started).inSeconds))
        print(String(format: "server RSS: %.1f MiB before, %.1f MiB with %d connections: %.1f KiB per connection",
                     Double(before) / 1_048_576, Double(after) / 1_048_576, count, perConnection / 1024))
        for connection in connections { connection.close() }
    }

    // MARK: Load

    private func load(tokens: TokenIssuer, children: [ServerProcess], loops: LoadLoops) async throws {
        let ports = children.map(\.port)
        var agentTokens: [String] = []
        for index in 0..<agents { agentTokens.append(try await tokens.make("agent\(index)", role: .agent)) }
        var customerTokens: [String] = []
        for index in 0..<customers { customerTokens.append(try await tokens.make("customer\(index)", role: .customer)) }

        let agentConnections = try await openAll(agentTokens, as: { _ in .agent }, ports: ports, hello: Hello(), loops: loops)
        let customerConnections = try await openAll(customerTokens, as: { .customer(index: $0) }, ports: ports,
                                                    hello: Hello(lastSeq: 0), loops: loops)
        print("connected \(agents) agents and \(customers) customers on \(threads) load thread(s)\(ports.count > 1 ? ", split between \(ports.count) nodes" : "")")

        let origin = NIODeadline.now().uptimeNanoseconds
        let plan = LoadPlan(origin: origin, measureFrom: 1_000_000_000, measureUntil: 1_000_000_000 + Int64(duration * 1e9),
                            rate: rate, window: window, customers: customers,
                            padding: String(repeating: "x", count: max(0, messageBytes - 24)))
        for connection in agentConnections + customerConnections { connection.start(plan) }
        try await Task.sleep(for: .nanoseconds(plan.measureFrom))
        var commitsBefore: [CommitFigures] = []
        for port in ports { commitsBefore.append(await CommitFigures.read(port: port)) }
        let cpuBefore = children.map { $0.cpuSeconds() }
        let databaseBefore = cpuSecondsByProcess(named: "postgres")
        let ownBefore = ownCPUSeconds()
        try await Task.sleep(for: .nanoseconds(plan.measureUntil - plan.measureFrom))
        let cpuAfter = children.map { $0.cpuSeconds() }
        var commits: [CommitFigures] = []
        for (port, before) in zip(ports, commitsBefore) { commits.append(await CommitFigures.read(port: port) - before) }
        let databaseCPU = cpuSecondsByProcess(named: "postgres").reduce(0.0) { total, process in
            total + process.value - (databaseBefore[process.key] ?? 0)
        } / duration
        let ownCPU = (ownCPUSeconds() - ownBefore) / duration
        // Messages sent near the end of the window are still on their way: give them time to arrive.
        try await Task.sleep(for: .seconds(2))
        let report = try await loops.total()
        let serverCPU = zip(cpuAfter, cpuBefore).map { ($0 - $1) / duration }
        print(String(format: "mode: %@, %d customers, %d agents, %.0f s measured, %d-byte messages",
                     rate == 0 ? "closed loop (window \(window))" : "open loop \(rate) msg/s", customers, agents, duration, messageBytes))
        print(String(format: "stored (acked): %.0f msg/s   delivered to agents: %.0f msg/s   errors: %d",
                     Double(report.acked) / duration, Double(report.delivered) / duration, report.errors))
        let h = report.histogram
        func ms(_ percentile: Double) -> String { String(format: "%.2f", Double(h.valueAtPercentile(percentile)) / 1000) }
        print("end-to-end latency ms: p50 \(ms(50))  p90 \(ms(90))  p99 \(ms(99))  p99.9 \(ms(99.9))  max \(String(format: "%.2f", Double(h.max) / 1000))  (n=\(h.totalCount))")
        for ((child, cpu), commit) in zip(zip(children, serverCPU), commits) {
            print(String(format: "server%@: CPU %.0f%% of one core, peak RSS %.1f MiB; %.0f commits/s of %.0f messages each, %.2f ms each (%.0f%% of the time in commits)",
                         children.count > 1 ? " pid \(child.pid)" : "", cpu * 100, Double(child.peakResidentBytes()) / 1_048_576,
                         commit.commits / duration, commit.commits > 0 ? commit.messages / commit.commits : 0,
                         commit.commits > 0 ? commit.seconds / commit.commits * 1000 : 0, commit.seconds / duration * 100))
        }
        if database != nil { print(String(format: "PostgreSQL: CPU %.0f%% of one core", databaseCPU * 100)) }
        print(String(format: "load generator: CPU %.0f%%", ownCPU * 100))
        for connection in agentConnections + customerConnections { connection.close() }
    }

    /// Opens a connection per token, a few hundred at a time, each waiting for `synced`.
    private func openAll(_ tokens: [String], as kind: @escaping @Sendable (Int) -> LoadConnection.Kind, ports: [Int],
                         hello: Hello, loops: LoadLoops) async throws -> [LoadConnection] {
        let helloText = String(decoding: try FrameCodec().encode(.hello(hello)), as: UTF8.self)
        var connections: [LoadConnection] = []
        connections.reserveCapacity(tokens.count)
        for start in stride(from: 0, to: tokens.count, by: 200) {
            let batch = try await withThrowingTaskGroup(of: (Int, LoadConnection).self) { group in
                for index in start..<min(start + 200, tokens.count) {
                    group.addTask {
                        (index, try await LoadConnection.open(kind(index), host: "127.0.0.1", port: ports[index % ports.count], token: tokens[index],
                                                              hello: helloText, loops: loops))
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }.sorted { $0.0 < $1.0 }.map(\.1)
            }
            connections += batch
        }
        return connections
    }
}
