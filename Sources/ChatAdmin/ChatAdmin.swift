import ArgumentParser
import ChatProtocol
import ChatStore
import ChatStorePostgres
import Foundation
import Logging

/// `chat-admin`: operator commands on a data directory, safe while the server runs.
@main
struct ChatAdmin: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat-admin",
        abstract: "Manage the tokens, media store and transcripts of a chat server's data directory (safe while the server runs).",
        discussion: "Exit codes: 0 success, 1 the operation failed (one line on stderr says why), 2 media verify found problems it did not repair, 64 bad usage.",
        subcommands: [Tokens.self, Media.self, Export.self, Migrate.self, Canned.self, Report.self]
    )
}

/// Options every command shares.
struct DataOptions: ParsableArguments {
    @Option(name: .customLong("data-dir"), help: "The server's data directory, holding chat.sqlite (CHAT_DATA_DIR).")
    var dataDirectory: String = ProcessInfo.processInfo.environment["CHAT_DATA_DIR"] ?? "."

    @Option(name: .customLong("database"), help: "A PostgreSQL database (postgres://USER[:PASSWORD]@HOST[:PORT]/DB, password also from PGPASSWORD or ?passwordFile=PATH) instead of chat.sqlite in --data-dir (CHAT_DATABASE).")
    var databaseOption: String?

    var database: String? { databaseOption ?? ProcessInfo.processInfo.environment["CHAT_DATABASE"] }

    @OptionGroup var deadline: DatabaseDeadline

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    /// Runs `body` with the stores of the database the server uses: the data directory's SQLite file, or PostgreSQL
    /// (its connection pool runs while `body` does). Store errors become one line on stderr.
    func withStorage<T: Sendable>(_ body: @Sendable (ChatStorage) async throws -> T) async throws -> T {
        do {
            guard let url = database else { return try await body(try open().storage) }
            var logger = Logger(label: "chat-admin")
            logger.logLevel = .error
            return try await PostgresDatabase.withDatabase(url: url, logger: logger, deadline: deadline.duration) { try await body($0.storage) }
        } catch let error as StoreError {
            throw AdminFailure(error.description)
        }
    }

    /// The SQLite database of the data directory, for the commands that work on it alone.
    func open() throws -> ChatDatabase {
        let path = DataDirectory(dataDirectory).databasePath
        do {
            try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
            return try ChatDatabase(path: path)
        } catch {
            throw AdminFailure("\(error)")
        }
    }
}

/// How long one PostgreSQL operation may take, as `chat-server --database-timeout`.
struct DatabaseDeadline: ParsableArguments {
    @Option(name: .customLong("database-timeout"), help: "Seconds one PostgreSQL operation may take before the command fails (CHAT_DATABASE_TIMEOUT).")
    var seconds: Int = ProcessInfo.processInfo.environment["CHAT_DATABASE_TIMEOUT"].flatMap(Int.init) ?? 5

    func validate() throws {
        guard seconds > 0 else { throw ValidationError("--database-timeout must be at least 1 second") }
    }

    var duration: Duration { .seconds(seconds) }
}

/// A failure shown as one line on stderr, exit code 1.
struct AdminFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension ChatAdmin {
    struct Tokens: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "tokens",
            abstract: "Create, list, revoke, rotate and import session tokens.",
            subcommands: [Create.self, List.self, Revoke.self, Rotate.self, Import.self]
        )
    }
}

extension ChatAdmin.Tokens {
    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a token for USER and print it once; only its hash is stored.")

        @Argument(help: "Username: 1-64 letters, digits, '.', '_', '-' or '@'.")
        var user: String

        @Option(help: "agent or customer.")
        var role: Role

        @Option(help: "Lifetime such as 30d, 12h, 90m; none means no expiry.")
        var expires: String?

        @OptionGroup var options: DataOptions

        func run() async throws {
            let expiresAt = try expiry(expires)
            let (user, role) = (user, role)
            let (token, record) = try await options.withStorage { try await $0.tokens.create(username: user, role: role, expiresAt: expiresAt) }
            showNewToken(token, record, verb: "created", json: options.json)
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replace USER's active tokens with a new one of the same role and print it once.",
            discussion: "The old tokens are revoked at once; their live sessions are cut within a second.")

        @Argument(help: "The user whose token to replace.")
        var user: String

        @Option(help: "Lifetime of the new token such as 30d; by default the old token's lifetime carries over.")
        var expires: String?

        @OptionGroup var options: DataOptions

        func run() async throws {
            let expiresAt = try expiry(expires)
            let user = user
            let (token, record, revoked) = try await options.withStorage { try await $0.tokens.rotate(username: user, expiresAt: expiresAt) }
            showNewToken(token, record, verb: "rotated (revoked \(revoked.map { String($0.id) }.joined(separator: ", ")))",
                         json: options.json, extra: ["revoked": revoked.map(\.id)])
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import the original system's session_tokens.db so its users keep their tokens.",
            discussion: """
                Reads the Sessions(id, username, session_token) table read-only and stores each token hashed, with \
                no expiry. Importing again changes nothing. Rows with an invalid username or an empty token are \
                skipped and listed. Exit code 1 when the file is missing, not SQLite or has no Sessions table.
                """)

        @Argument(help: "Path to session_tokens.db.")
        var path: String

        @Option(help: "Role of the imported users (the original system had none).")
        var role: Role = .customer

        @Option(name: .customLong("agent"), help: "A user to import as an agent instead; repeat for several.")
        var agents: [String] = []

        @Flag(help: "Report what would be imported without changing anything.")
        var dryRun = false

        @OptionGroup var options: DataOptions

        func run() async throws {
            let sessions: [LegacySession]
            do { sessions = try LegacySession.read(path: path) } catch { throw AdminFailure("\(error)") }
            let role = role, agents = Set(agents), dryRun = dryRun
            let report = try await options.withStorage { storage in
                try await storage.tokens.importLegacy(sessions, role: { agents.contains($0) ? .agent : role }, dryRun: dryRun)
            }
            if options.json { return try printReport(report) }
            let would = dryRun ? "would import" : "imported"
            print("\(would) \(report.imported.count) token\(report.imported.count == 1 ? "" : "s"), \(report.alreadyPresent.count) already present, \(report.skipped.count) skipped")
            if !report.skipped.isEmpty {
                print(table(header: ["ROW", "USER", "SKIPPED BECAUSE"],
                            rows: report.skipped.map { [String($0.id), $0.user, $0.reason] }, rightAligned: [0]))
            }
            if !report.weak.isEmpty {
                note("warning: \(report.weak.count) imported token\(report.weak.count == 1 ? " is" : "s are") shorter than \(LegacyImportReport.weakTokenLength) characters (\(report.weak.prefix(5).joined(separator: ", "))\(report.weak.count > 5 ? ", ..." : "")); consider 'chat-admin tokens rotate USER'")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tokens (never the secrets).")

        @OptionGroup var options: DataOptions

        func run() async throws {
            let records = try await options.withStorage { try await $0.tokens.list() }
            let now = epochMilliseconds()
            if options.json {
                printJSON(records.map { record -> [String: Any] in
                    ["id": record.id, "user": record.username, "role": record.role.rawValue, "createdAt": record.createdAt,
                     "expiresAt": record.expiresAt as Any, "revokedAt": record.revokedAt as Any,
                     "lastUsedAt": record.lastUsedAt as Any, "active": record.isActive(at: now)]
                })
                return
            }
            let rows = records.map { record in
                [String(record.id), record.username, record.role.rawValue, formatTime(record.createdAt),
                 record.lastUsedAt.map(formatTime) ?? "never", record.expiresAt.map(formatTime) ?? "never",
                 record.revokedAt != nil ? "revoked" : (record.isActive(at: now) ? "active" : "expired")]
            }
            print(table(header: ["ID", "USER", "ROLE", "CREATED", "LAST USED", "EXPIRES", "STATE"], rows: rows))
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke the tokens of USER, or one token by its numeric ID; live sessions are cut within a second.")

        @Argument(help: "A username, or a token ID from 'tokens list'.")
        var target: String

        @OptionGroup var options: DataOptions

        func run() async throws {
            let target = target
            let revoked = try await options.withStorage { storage in
                if let id = Int64(target) { try await storage.tokens.revoke(id: id) } else { try await storage.tokens.revoke(username: target) }
            }
            if options.json {
                printJSON(["revoked": revoked.map(\.id)])
            } else {
                print("revoked \(revoked.count) token\(revoked.count == 1 ? "" : "s") of \(Set(revoked.map(\.username)).sorted().joined(separator: ", "))")
            }
        }
    }
}

extension Role: ExpressibleByArgument {}

/// `--expires 30d` to an absolute expiry in epoch milliseconds.
private func expiry(_ text: String?) throws -> Int64? {
    guard let text else { return nil }
    guard let duration = parseDuration(text) else {
        throw ValidationError("--expires: use a number followed by d, h, m or s, e.g. 30d")
    }
    return epochMilliseconds() + Int64(duration * 1000)
}

/// Prints a new token once on stdout (or in JSON), with what happened on stderr.
private func showNewToken(_ token: String, _ record: SessionRecord, verb: String, json: Bool, extra: [String: Any] = [:]) {
    if json {
        printJSON(["id": record.id, "user": record.username, "role": record.role.rawValue, "token": token,
                   "expiresAt": record.expiresAt as Any].merging(extra) { a, _ in a })
    } else {
        print(token)
        note("token \(record.id) for \(record.role.rawValue) \(record.username) \(verb); it is shown only now")
    }
}

