import ArgumentParser
import ChatStore
import ChatStorePostgres
import Foundation
import Logging

extension ChatAdmin {
    struct Migrate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy a data directory's SQLite database into PostgreSQL, for running several nodes.",
            discussion: """
                Copies tokens, conversations, messages (with notes and status events), read markers, canned replies \
                and the media catalog (blobs, uploads, attachments, pending deletions) with their ids, table by table \
                in pages. The target must be empty or hold only rows an earlier run copied from this same file: a \
                target with other rows (tokens made there first) is refused before anything is written. Running it \
                again (or after an interruption) finishes the copy and brings over what changed in SQLite since \
                (counters, status, revocations); with nothing changed it changes nothing. Every source row is then \
                checked to be in PostgreSQL with the same values; it ends with the counts it checked. Media files \
                stay where they are. Stop the server on the SQLite file first.
                """)

        @Option(help: "The SQLite database to copy (chat.sqlite of a data directory).")
        var from: String

        @Option(help: "The PostgreSQL database: postgres://USER[:PASSWORD]@HOST[:PORT]/DB (password also from PGPASSWORD or ?passwordFile=PATH; default CHAT_DATABASE).")
        var to: String?

        @OptionGroup var deadline: DatabaseDeadline

        @Flag(help: "Print JSON instead of a table.")
        var json = false

        func validate() throws {
            guard target != nil else { throw ValidationError("give the PostgreSQL database: --to postgres://... or CHAT_DATABASE") }
        }

        private var target: String? { to ?? ProcessInfo.processInfo.environment["CHAT_DATABASE"] }

        func run() async throws {
            guard FileManager.default.fileExists(atPath: from) else { throw AdminFailure("no database at \(from)") }
            guard let target, PostgresLocation.isPostgresURL(target) else {
                throw AdminFailure("--to must be a postgres:// URL (the SQLite file is --from)")
            }
            var logger = Logger(label: "chat-admin")
            logger.logLevel = .error
            let source: ChatDatabase
            do { source = try ChatDatabase(path: from) } catch { throw AdminFailure(error.description) }
            let counts: [PostgresImport.TableCount]
            do {
                counts = try await PostgresDatabase.withDatabase(url: target, logger: logger, deadline: deadline.duration) { database in
                    let copier = PostgresImport(database: database)
                    // First every table is checked, writing nothing: a target that is not this source's copy is
                    // refused before a row goes in.
                    do {
                        for table in ExportedTable.all { _ = try await copier.transfer(table, from: source, copying: false) }
                    } catch StoreError.notACopy(let table, let reason) {
                        throw AdminFailure(StoreError.notACopy(table: table, reason: reason).description + " Nothing was copied.")
                    }
                    var counts: [PostgresImport.TableCount] = []
                    for table in ExportedTable.all { counts.append(try await copier.transfer(table, from: source, copying: true)) }
                    try await copier.advanceIdentities()
                    return counts
                }
            } catch let error as StoreError {
                throw AdminFailure(error.description)
            }
            let short = counts.filter { $0.verified < $0.source }
            if json {
                printJSON(["tables": counts.map { ["table": $0.table, "sqlite": $0.source, "copied": $0.copied, "updated": $0.updated,
                                                   "postgres": $0.verified] },
                           "complete": short.isEmpty])
            } else {
                print(table(header: ["TABLE", "SQLITE", "COPIED NOW", "UPDATED NOW", "SAME IN POSTGRESQL"],
                            rows: counts.map { [$0.table, String($0.source), String($0.copied), String($0.updated), String($0.verified)] },
                            rightAligned: [1, 2, 3, 4]))
            }
            guard short.isEmpty else {
                throw AdminFailure("PostgreSQL lacks rows of \(short.map(\.table).joined(separator: ", ")); run again")
            }
        }
    }
}
