import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A throwaway PostgreSQL server for tests: `initdb` into a temporary directory, started on a free loopback port
/// with its socket in that directory, stopped and deleted by `stop()`. PostgreSQL refuses to run as root, so as root
/// its programs run as the `postgres` user (Debian's package creates it). The server runs as a child process, not
/// through `pg_ctl start`: a daemon would inherit the descriptor by which Foundation notices a child's exit, and the
/// wait for `pg_ctl` would never end.
public final class PostgresCluster: Sendable {
    public let directory: String
    public let port: Int
    /// The superuser `initdb` made; connections from loopback are trusted, unless the cluster has a password.
    public let user = "chat"
    /// The superuser's password when the cluster was started with one: then every login needs it (SCRAM).
    public let password: String?
    private let bin: String
    private let server = Mutex<Process?>(nil)

    /// The URL of database `name` (see `createDatabase`).
    public func url(_ name: String = "chat") -> String {
        "postgres://\(user)@127.0.0.1:\(port)/\(name)"
    }

    private init(directory: String, port: Int, bin: String, password: String?) {
        self.directory = directory
        self.port = port
        self.bin = bin
        self.password = password
    }

    /// Where Debian puts the server programs (not on PATH), or PATH.
    static func binDirectory() throws -> String {
        if let initdb = findExecutable("initdb") {
            return URL(fileURLWithPath: initdb).resolvingSymlinksInPath().deletingLastPathComponent().path
        }
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).sorted { $0.compare($1, options: .numeric) == .orderedDescending }
        for version in versions where FileManager.default.isExecutableFile(atPath: "\(root)/\(version)/bin/initdb") {
            return "\(root)/\(version)/bin"
        }
        throw TestFailure("PostgreSQL is not installed (initdb not found; .ci/run installs the postgresql package)")
    }

    /// Creates and starts a cluster with a database named `chat`. With a `password`, logins are checked
    /// (`scram-sha-256`) instead of trusted.
    public static func start(password: String? = nil) async throws -> PostgresCluster {
        // Another test's server may take the free port between the probe and the postmaster's bind: try a few.
        var attempt = 1
        while true {
            do {
                return try await startOnce(password: password)
            } catch let failure as TestFailure where attempt < 3 && failure.description.contains("Address already in use") {
                attempt += 1
            }
        }
    }

    private static func startOnce(password: String?) async throws -> PostgresCluster {
        let bin = try binDirectory()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pg-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let cluster = PostgresCluster(directory: directory, port: try freeLoopbackPort(), bin: bin, password: password)
        do {
            if getuid() == 0 {
                try FileManager.default.setAttributes([.ownerAccountName: "postgres"], ofItemAtPath: directory)
            }
            var authentication = ["--auth=trust"]
            if let password {
                let file = directory + "/password"
                try password.write(toFile: file, atomically: false, encoding: .utf8)
                try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: file)  // initdb reads it as postgres
                authentication = ["--auth=scram-sha-256", "--pwfile=" + file]
            }
            try await cluster.run("initdb", ["-D", directory + "/data", "-U", "chat", "--no-sync", "-E", "UTF8"] + authentication)
            try? FileManager.default.removeItem(atPath: directory + "/password")
            try await cluster.startServer()
            try await cluster.run("createdb", ["-h", "127.0.0.1", "-p", String(cluster.port), "-U", "chat", "chat"])
        } catch {
            await cluster.stop()
            throw error
        }
        return cluster
    }

    /// Starts a cluster, runs `body` with it, and stops it whether `body` returns or throws.
    public static func with<T>(password: String? = nil, _ body: (PostgresCluster) async throws -> T) async throws -> T {
        let cluster = try await start(password: password)
        do {
            let result = try await body(cluster)
            await cluster.stop()
            return result
        } catch {
            await cluster.stop()
            throw error
        }
    }

    /// Starts the server (again, after `stopServer`) on the same port and data, and waits until it accepts
    /// connections.
    public func startServer() async throws {
        let process = Process()
        let postgres = bin + "/postgres"
        let arguments = ["-D", directory + "/data", "-p", String(port), "-k", directory, "-c", "listen_addresses=127.0.0.1",
                         "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "log_lock_waits=on", "-c", "deadlock_timeout=200ms"]
        if getuid() == 0 {
            // setpriv execs the server in place (runuser would stay between as its parent).
            process.executableURL = URL(fileURLWithPath: try requireExecutable("setpriv"))
            process.arguments = ["--reuid=postgres", "--regid=postgres", "--init-groups", "--", postgres] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: postgres)
            process.arguments = arguments
        }
        let logPath = directory + "/server.log"
        if !FileManager.default.fileExists(atPath: logPath) { _ = FileManager.default.createFile(atPath: logPath, contents: nil) }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        log.seekToEndOfFile()
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = log
        process.standardError = log
        try process.run()
        server.withLock { $0 = process }
        let deadline = ContinuousClock.now + .seconds(30)
        // The postmaster writes its state into the last line of postmaster.pid ("ready" once it accepts
        // connections): read there, not by starting pg_isready, which under a loaded full run (several clusters
        // starting at once) once took over ten seconds to come back.
        let pidFile = directory + "/data/postmaster.pid"
        while ContinuousClock.now < deadline {
            let lines = ((try? String(contentsOfFile: pidFile, encoding: .utf8)) ?? "").split(separator: "\n")
            if lines.count >= 8, lines[7].trimmingCharacters(in: .whitespaces) == "ready" { return }
            guard process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        throw TestFailure("PostgreSQL did not start: \(text.suffix(2000))")
    }

    /// Stops the server (a fast shutdown), keeping its data: for tests of a database that goes away.
    public func stopServer() async throws {
        guard let process = server.withLock({ current -> Process? in defer { current = nil }; return current }) else { return }
        try await offPool {
            guard process.isRunning else { return }
            kill(process.processIdentifier, SIGINT)
            if !waitForExit(process, within: .seconds(30)) {
                kill(process.processIdentifier, SIGKILL)
                _ = waitForExit(process, within: .seconds(5))
            }
        }
    }

    /// Creates another database and returns its URL.
    public func createDatabase(_ name: String) async throws -> String {
        try await run("createdb", ["-h", "127.0.0.1", "-p", String(port), "-U", "chat", name])
        return url(name)
    }

    /// Runs SQL with `psql` on database `name`, for tests that change rows behind the server's back.
    @discardableResult
    public func psql(_ sql: String, database name: String = "chat") async throws -> String {
        try await run("psql", ["-h", "127.0.0.1", "-p", String(port), "-U", "chat", "-d", name, "-v", "ON_ERROR_STOP=1",
                               "-At", "-c", sql]).output
    }

    /// Stops the server and deletes everything.
    public func stop() async {
        try? await stopServer()
        if ProcessInfo.processInfo.environment["CHAT_TEST_KEEP_POSTGRES"] == nil { try? FileManager.default.removeItem(atPath: directory) }
    }

    @discardableResult
    private func run(_ program: String, _ arguments: [String]) async throws -> ToolResult {
        let path = bin + "/" + program
        let environment = password.map { ["PGPASSWORD": $0] } ?? [:]
        let result: ToolResult
        if getuid() == 0 {
            result = try await runTool(try requireExecutable("runuser"), ["-u", "postgres", "--", path] + arguments, timeout: .seconds(60),
                                       currentDirectory: "/tmp", environment: environment)
        } else {
            result = try await runTool(path, arguments, timeout: .seconds(60), environment: environment)
        }
        guard result.status == 0 else {
            let log = (try? String(contentsOfFile: directory + "/server.log", encoding: .utf8)) ?? ""
            throw TestFailure("\(program) \(arguments.joined(separator: " ")) exited \(result.status): \(result.stderr) \(log.suffix(2000))")
        }
        return result
    }
}
