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
                Copies tokens, conversations, messages, read markers and the media catalog with their ids, table by \
                table in pages; rows already in PostgreSQL are left as they are, so running it again (or after an \
                interruption) changes nothing and finishes the copy. Ends with the row counts it checked. Media files \
                stay where they are. Stop the server on the SQLite file first, or run again after stopping it.
                """)

        @Option(help: "The SQLite database to copy (chat.sqlite of a data directory).")
        var from: String

        @Option(help: "The PostgreSQL database: postgres://USER[:PASSWORD]@HOST[:PORT]/DB (password also from PGPASSWORD or ?passwordFile=PATH).")
        var to: String

        @OptionGroup var deadline: DatabaseDeadline

        @Flag(help: "Print JSON instead of a table.")
        var json = false

        func run() async throws {
            guard FileManager.default.fileExists(atPath: from) else { throw AdminFailure("no database at \(from)") }
            var logger = Logger(label: "chat-admin")
            logger.logLevel = .error
            let source: ChatDatabase
            do { source = try ChatDatabase(path: from) } catch { throw AdminFailure(error.description) }
            let counts: [(table: String, sqlite: Int, copied: Int, postgres: Int)]
            do {
                counts = try await PostgresDatabase.withDatabase(url: to, logger: logger, deadline: deadline.duration) { target in
                    let copier = PostgresImport(database: target)
                    var counts: [(String, Int, Int, Int)] = []
                    for table in ExportedTable.all {
                        var copied = 0
                        var offset = 0
                        while true {
                            let rows = try await source.exportRows(of: table, offset: offset, limit: 1000)
                            if rows.isEmpty { break }
                            copied += try await copier.insert(rows, into: table)
                            offset += rows.count
                        }
                        counts.append((table.name, try await source.rowCount(of: table), copied, try await copier.rowCount(of: table)))
                    }
                    try await copier.advanceIdentities()
                    return counts
                }
            } catch let error as StoreError {
                throw AdminFailure(error.description)
            }
            let short = counts.filter { $0.postgres < $0.sqlite }
            if json {
                printJSON(["tables": counts.map { ["table": $0.table, "sqlite": $0.sqlite, "copied": $0.copied, "postgres": $0.postgres] },
                           "complete": short.isEmpty])
            } else {
                print(table(header: ["TABLE", "SQLITE", "COPIED NOW", "POSTGRESQL"],
                            rows: counts.map { [$0.table, String($0.sqlite), String($0.copied), String($0.postgres)] }, rightAligned: [1, 2, 3]))
            }
            guard short.isEmpty else {
                throw AdminFailure("PostgreSQL has fewer rows than SQLite in \(short.map(\.table).joined(separator: ", ")); run again")
            }
        }
    }
}
