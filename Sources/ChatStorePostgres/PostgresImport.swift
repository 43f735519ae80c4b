import ChatStore
import NIOCore
import PostgresNIO

/// Copies rows exported from SQLite (`ChatDatabase.exportRows`) into PostgreSQL for `chat-admin migrate`. A row
/// already there (same key) is left as it is, so copying twice changes nothing.
public struct PostgresImport: Sendable {
    let database: PostgresDatabase

    public init(database: PostgresDatabase) {
        self.database = database
    }

    /// PostgreSQL's BOOLEAN columns; SQLite keeps them as 0 and 1.
    private static let booleans: Set<String> = ["broadcast", "name_mismatch", "metadata_removed"]
    /// INTEGER (32-bit) columns; the others are BIGINT.
    private static let int32s: Set<String> = ["width", "height", "position", "frames"]

    /// Inserts `rows` of `table` in one transaction; returns how many were new.
    public func insert(_ rows: [[ColumnValue]], into table: ExportedTable) async throws(StoreError) -> Int {
        guard !rows.isEmpty else { return 0 }
        let placeholders = (1...table.columns.count).map { "$\($0)" }.joined(separator: ", ")
        let sql = "INSERT INTO \(table.name) (\(table.columns.joined(separator: ", "))) VALUES (\(placeholders)) "
            + "ON CONFLICT (\(table.key.joined(separator: ", "))) DO NOTHING RETURNING 1 AS new"
        let logger = database.logger
        let queries = try rows.map { row throws(StoreError) -> PostgresQuery in
            var bindings = PostgresBindings(capacity: row.count)
            for (column, value) in zip(table.columns, row) { try Self.bind(value, column: column, into: &bindings) }
            return PostgresQuery(unsafeSQL: sql, binds: bindings)
        }
        return try await database.withTransaction("copying \(table.name)") { connection in
            var inserted = 0
            for query in queries {
                for try await _ in try await connection.query(query, logger: logger) { inserted += 1 }
            }
            return inserted
        }
    }

    /// After copying rows with their ids: the identity columns continue after the highest id.
    public func advanceIdentities() async throws(StoreError) {
        let logger = database.logger
        try await database.withConnection("advancing identities") { connection in
            for table in ["sessions", "conversations", "messages"] {
                try await connection.run(PostgresQuery(unsafeSQL: """
                    SELECT setval(pg_get_serial_sequence('\(table)', 'id'), GREATEST((SELECT COALESCE(max(id), 0) FROM \(table)), 1))
                    """), logger: logger)
            }
        }
    }

    /// Number of rows of `table`.
    public func rowCount(of table: ExportedTable) async throws(StoreError) -> Int {
        let logger = database.logger
        return try await database.withConnection("counting \(table.name)") { connection in
            try await connection.rows(PostgresQuery(unsafeSQL: "SELECT count(*) AS count FROM \(table.name)"), logger: logger)
                .first?.int("count") ?? 0
        }
    }

    private static func bind(_ value: ColumnValue, column: String, into bindings: inout PostgresBindings) throws(StoreError) {
        switch value {
        case .null:
            bindings.appendNull()
        case .integer(let integer):
            if booleans.contains(column) {
                bindings.append(integer != 0)
            } else if int32s.contains(column) {
                guard let small = Int32(exactly: integer) else {
                    throw .unreadableImport(path: column, reason: "\(integer) does not fit PostgreSQL's INTEGER column")
                }
                bindings.append(small)
            } else {
                bindings.append(integer)
            }
        case .real(let real):
            bindings.append(real)
        case .text(let text):
            bindings.append(text)
        case .bytes(let bytes):
            bindings.append(ByteBuffer(bytes: bytes))
        }
    }
}
