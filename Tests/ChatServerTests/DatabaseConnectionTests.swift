import ChatServerFixture
import ChatStore
import ChatStorePostgres
import Foundation
import Logging
import TestProcesses
import Testing

/// Connecting to a PostgreSQL that checks passwords (a real server the test starts with `scram-sha-256`): a refused
/// login or a missing database is said as PostgreSQL said it, at once, not as a timeout; and the password is taken
/// from the URL, `PGPASSWORD` and a password file.
@Suite("Connecting to PostgreSQL", .serialized, .timeLimit(.minutes(3)), .stopsServers)
struct DatabaseConnectionTests {
    private static let logger: Logger = {
        var logger = Logger(label: "test.connect")
        logger.logLevel = .critical
        return logger
    }()

    private static let secret = "right-secret-4711"

    /// The error of opening `url`, which must fail.
    private func refusal(_ url: String) async throws -> String {
        do {
            try await PostgresDatabase.withDatabase(url: url, logger: Self.logger, deadline: databaseWait) { _ in }
        } catch {
            return "\(error)"
        }
        throw TestFailure("\(url) was accepted")
    }

    @Test("in process: a wrong password and a missing database are one line saying so, long before the deadline; the password from a file works")
    func refusedLogins() async throws {
        try await PostgresCluster.with(password: Self.secret) { cluster in
            let started = ContinuousClock.now
            let wrong = try await refusal("postgres://chat:wrong-secret@127.0.0.1:\(cluster.port)/chat")
            #expect(wrong.contains("password authentication failed") && wrong.contains("28P01") && wrong.contains("check the password"), "\(wrong)")
            #expect(!wrong.contains("wrong-secret") && !wrong.contains("\n"), "\(wrong)")
            let missing = try await refusal("postgres://chat:\(Self.secret)@127.0.0.1:\(cluster.port)/nowhere")
            #expect(missing.contains("database \"nowhere\" does not exist") && missing.contains("createdb"), "\(missing)")
            #expect(!missing.contains(Self.secret) && !missing.contains("\n"), "\(missing)")
            let none = try await refusal("postgres://chat@127.0.0.1:\(cluster.port)/chat?passwordFile=/dev/null")
            #expect(none.contains("password"), "\(none)")
            // The deadline is databaseWait (30 s): an answer well before it is PostgreSQL's, not a timeout.
            #expect(ContinuousClock.now - started < .seconds(20))

            let directory = TestServer.makeDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let file = directory + "/pgpass"
            try "\(Self.secret)\n".write(toFile: file, atomically: true, encoding: .utf8)
            let count = try await PostgresDatabase.withDatabase(url: cluster.url() + "?passwordFile=" + file, logger: Self.logger,
                                                                deadline: databaseWait) { try await $0.storage.messages.messageCount() }
            #expect(count == 0)
        }
    }

    @Test("chat-server --database: a closed port, a wrong password, a missing database: one line on stderr, exit 1, no stack trace, at once; PGPASSWORD works")
    func serverProcessRefused() async throws {
        try await PostgresCluster.with(password: Self.secret) { cluster in
            let server = try builtExecutable("chat-server")
            let admin = try builtExecutable("chat-admin")
            let directory = TestServer.makeDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let cases: [(url: String, expected: [String])] = [
                ("postgres://chat:\(Self.secret)@127.0.0.1:\(try freeLoopbackPort())/chat", ["connection refused", "is running and listening"]),
                ("postgres://chat:wrong-secret@127.0.0.1:\(cluster.port)/chat", ["password authentication failed", "check the password"]),
                ("postgres://chat:\(Self.secret)@127.0.0.1:\(cluster.port)/nowhere", ["does not exist", "createdb"]),
            ]
            for (url, expected) in cases {
                let started = ContinuousClock.now
                let result = try await runTool(server, ["--database", url, "--database-timeout", "30", "--port", "0", "--data-dir", directory],
                                               timeout: .seconds(60))
                let elapsed = ContinuousClock.now - started
                let lines = result.stderr.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
                #expect(result.status == 1, "\(url): exit \(result.status) \(result.stderr)")
                #expect(lines.count == 1, "\(url): \(result.stderr)")
                let line = lines.first.map { String($0).lowercased() } ?? ""
                #expect(expected.allSatisfy { line.contains($0) }, "\(url): \(result.stderr)")
                #expect(!result.stderr.contains(Self.secret) && !result.stderr.contains("wrong-secret"))
                #expect(!result.stderr.contains("Fatal error") && !result.stderr.contains("Stack dump") && !result.stderr.contains("0x0"))
                // A refused login is said at once, not after the 30 s --database-timeout.
                #expect(elapsed < .seconds(20), "\(url) took \(elapsed)")
            }

            // The password from PGPASSWORD, in a real process; without it, one line asking for it.
            let listed = try await runTool(admin, ["tokens", "list", "--database", cluster.url(), "--data-dir", directory],
                                           timeout: .seconds(60), environment: ["PGPASSWORD": Self.secret])
            #expect(listed.status == 0, "\(listed.stderr)")
            let refused = try await runTool(admin, ["tokens", "list", "--database", cluster.url(), "--data-dir", directory],
                                            timeout: .seconds(60), environment: ["PGPASSWORD": "wrong-secret"])
            #expect(refused.status == 1 && refused.stderr.contains("password authentication failed"), "\(refused.stderr)")
            #expect(refused.stderr.split(separator: "\n").count == 1, "\(refused.stderr)")
        }
    }
}
