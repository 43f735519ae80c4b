import ArgumentParser
import ChatProtocol
import ChatStore
import Foundation

/// `chat-admin`: operator commands on a data directory, safe while the server runs.
@main
struct ChatAdmin: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat-admin",
        abstract: "Manage tokens of a chat server's data directory (safe while the server runs).",
        discussion: "Exit codes: 0 success, 1 the operation failed (message on stderr), 64 bad usage.",
        subcommands: [Tokens.self, Media.self]
    )
}

/// Options every command shares.
struct DataOptions: ParsableArguments {
    @Option(name: .customLong("data-dir"), help: "The server's data directory, holding chat.sqlite (CHAT_DATA_DIR).")
    var dataDirectory: String = ProcessInfo.processInfo.environment["CHAT_DATA_DIR"] ?? "."

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func open() throws -> ChatDatabase {
        let path = URL(fileURLWithPath: dataDirectory).appendingPathComponent("chat.sqlite").path
        do {
            try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
            return try ChatDatabase(path: path)
        } catch {
            throw AdminFailure("\(error)")
        }
    }
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
            abstract: "Create, list and revoke session tokens.",
            subcommands: [Create.self, List.self, Revoke.self]
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
            let store = TokenStore(database: try options.open())
            var expiresAt: Int64?
            if let expires {
                guard let duration = parseDuration(expires) else {
                    throw ValidationError("--expires: use a number followed by d, h, m or s, e.g. 30d")
                }
                expiresAt = epochMilliseconds() + Int64(duration * 1000)
            }
            do {
                let (token, record) = try await store.create(username: user, role: role, expiresAt: expiresAt)
                if options.json {
                    printJSON(["id": record.id, "user": record.username, "role": record.role.rawValue, "token": token,
                               "expiresAt": record.expiresAt as Any])
                } else {
                    print(token)
                    FileHandle.standardError.write(Data("token \(record.id) for \(record.role.rawValue) \(record.username) created; it is shown only now\n".utf8))
                }
            } catch {
                throw AdminFailure(error.description)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tokens (never the secrets).")

        @OptionGroup var options: DataOptions

        func run() async throws {
            let records: [SessionRecord]
            let store = TokenStore(database: try options.open())
            do { records = try await store.list() } catch { throw AdminFailure(error.description) }
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
            let store = TokenStore(database: try options.open())
            do {
                let revoked: [SessionRecord]
                if let id = Int64(target) {
                    revoked = try await store.revoke(id: id)
                } else {
                    revoked = try await store.revoke(username: target)
                }
                if options.json {
                    printJSON(["revoked": revoked.map(\.id)])
                } else {
                    print("revoked \(revoked.count) token\(revoked.count == 1 ? "" : "s") of \(Set(revoked.map(\.username)).sorted().joined(separator: ", "))")
                }
            } catch {
                throw AdminFailure(error.description)
            }
        }
    }
}

extension Role: ExpressibleByArgument {}

