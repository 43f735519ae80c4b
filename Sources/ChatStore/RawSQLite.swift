import GRDB

/// An SQLite file opened directly, as an operator's `sqlite3` shell would, for tests that arrange what no client can
/// make (a backdated row, a renamed table, a legacy file to import). Behind SPI so that the server and tools never
/// reach past the store protocols, and so that GRDB stays imported in this module only, tests included.
@_spi(Testing)
public struct RawSQLite: Sendable {
    private let queue: DatabaseQueue

    /// Opens (or creates) the file, waiting up to 10 s for a running server's writer.
    public init(path: String) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        queue = try DatabaseQueue(path: path, configuration: configuration)
    }

    /// Applies the store's migrations up to and including `migration`, leaving the file as that version left it.
    public func migrate(upTo migration: String) throws {
        try ChatDatabase.migrator.migrate(queue, upTo: migration)
    }

    /// Runs one statement, or several separated by semicolons, in one transaction; arguments bind in order.
    public func execute(_ sql: String, _ arguments: any RawSQLiteArgument...) async throws {
        let bound = Self.arguments(arguments)
        try await queue.write { try $0.execute(sql: sql, arguments: bound) }
    }

    /// The first column of the first row as an integer; nil when there is no row or it is NULL.
    public func int(_ sql: String, _ arguments: any RawSQLiteArgument...) async throws -> Int64? {
        let bound = Self.arguments(arguments)
        return try await queue.read { try Int64.fetchOne($0, sql: sql, arguments: bound) }
    }

    /// The first column of every row as text.
    public func strings(_ sql: String, _ arguments: any RawSQLiteArgument...) async throws -> [String] {
        let bound = Self.arguments(arguments)
        return try await queue.read { try String.fetchAll($0, sql: sql, arguments: bound) }
    }

    /// Every row, each column's value as text by column name; a NULL column is absent.
    public func rows(_ sql: String, _ arguments: any RawSQLiteArgument...) async throws -> [[String: String]] {
        let bound = Self.arguments(arguments)
        return try await queue.read { db in
            try Row.fetchAll(db, sql: sql, arguments: bound).map { row in
                var values: [String: String] = [:]
                for (column, value) in row {
                    switch value.storage {
                    case .null: continue
                    case .int64(let number): values[column] = String(number)
                    case .double(let number): values[column] = String(number)
                    case .string(let text): values[column] = text
                    case .blob(let bytes): values[column] = String(decoding: bytes, as: UTF8.self)
                    }
                }
                return values
            }
        }
    }

    private static func arguments(_ values: [any RawSQLiteArgument]) -> StatementArguments {
        StatementArguments(values.map { $0 as any DatabaseValueConvertible })
    }
}

/// A value a test binds into raw SQL.
@_spi(Testing)
public protocol RawSQLiteArgument: DatabaseValueConvertible, Sendable {}

@_spi(Testing) extension Int: RawSQLiteArgument {}
@_spi(Testing) extension Int64: RawSQLiteArgument {}
@_spi(Testing) extension Double: RawSQLiteArgument {}
@_spi(Testing) extension String: RawSQLiteArgument {}
@_spi(Testing) extension Optional: RawSQLiteArgument where Wrapped: RawSQLiteArgument {}
