import ChatStore
import NIOCore
import PostgresNIO

/// Copies rows exported from SQLite (`ChatDatabase.exportRows`) into PostgreSQL for `chat-admin migrate`, and checks
/// that the target holds this source's rows and no others. A table is walked a page of source rows at a time, in key
/// order; each page stands for the range of keys from after the previous page's last key to its own last key, so the
/// target's rows in that range must all be the page's (same key and identity) and every target row falls in one
/// range: rows made in PostgreSQL first (a token whose id a source token has) are found instead of skipped. Rows with
/// the same identity whose other columns differ are rewritten from the source.
public struct PostgresImport: Sendable {
    let database: PostgresDatabase

    public init(database: PostgresDatabase) {
        self.database = database
    }

    /// What one table holds after `transfer`.
    public struct TableCount: Sendable {
        public var table: String
        /// Rows in SQLite.
        public var source = 0
        /// Rows inserted by this run.
        public var copied = 0
        /// Rows PostgreSQL had with other values in columns a copy may change (a counter, a status, a revocation made
        /// in SQLite since the last run), rewritten from the source by this run.
        public var updated = 0
        /// Source rows found in PostgreSQL with the same value in every column (after copying, when copying).
        public var verified = 0
    }

    /// PostgreSQL's BOOLEAN columns; SQLite keeps them as 0 and 1.
    private static let booleans: Set<String> = ["broadcast", "name_mismatch", "metadata_removed", "thumbnails"]
    /// INTEGER (32-bit) columns; the others are BIGINT.
    private static let int32s: Set<String> = ["width", "height", "position", "frames"]

    /// Walks `table` of `source`: checks that every row PostgreSQL has is the source's (same key and identity, else
    /// `StoreError.notACopy`), and with `copying` inserts the source rows it lacks, rewrites from the source those
    /// whose other columns differ (a counter, a status, a revocation changed in SQLite since the last run), and
    /// checks again that every row is then the same in every column. Without `copying` it writes nothing.
    public func transfer(_ table: ExportedTable, from source: ChatDatabase, copying: Bool, pageSize: Int = 1000)
        async throws(StoreError) -> TableCount {
        var count = TableCount(table: table.name)
        let keyColumns = table.key.compactMap { table.columns.firstIndex(of: $0) }
        var previous: [ColumnValue]?
        while true {
            let page = try await source.exportRows(of: table, offset: count.source, limit: pageSize)
            let last = page.last.map { row in keyColumns.map { row[$0] } }
            var pending = try await compare(page, of: table, after: previous, through: last)
            if copying && !(pending.missing.isEmpty && pending.stale.isEmpty) {
                try await write(pending.missing + pending.stale, into: table)
                count.copied += pending.missing.count
                count.updated += pending.stale.count
                pending = try await compare(page, of: table, after: previous, through: last)
                let left = pending.missing.count + pending.stale.count
                guard left == 0 else {
                    throw .notACopy(table: table.name, reason: "\(left) rows still differ from SQLite's after copying them; is a server running on either database?")
                }
            }
            count.verified += page.count - pending.missing.count - pending.stale.count
            count.source += page.count
            guard let last else { return count }
            previous = last
        }
    }

    /// The rows of `page` that PostgreSQL lacks, and those it has with other values outside the identity (`stale`),
    /// after checking that each row it has with a key in (`lower`, `upper`] is one of them, with the same identity.
    /// No `upper`: every key after `lower`.
    private func compare(_ page: [[ColumnValue]], of table: ExportedTable, after lower: [ColumnValue]?,
                         through upper: [ColumnValue]?) async throws(StoreError) -> (missing: [[ColumnValue]], stale: [[ColumnValue]]) {
        let keyColumns = table.key.compactMap { table.columns.firstIndex(of: $0) }
        let identityColumns = table.identity.compactMap { table.columns.firstIndex(of: $0) }
        var sourceRows: [[ColumnValue]: [ColumnValue]] = [:]
        for row in page { sourceRows[keyColumns.map { row[$0] }] = row }
        var same: Set<[ColumnValue]> = []
        var stale: Set<[ColumnValue]> = []
        for row in try await rows(of: table, after: lower, through: upper) {
            let key = keyColumns.map { row[$0] }
            guard let source = sourceRows[key] else {
                throw .notACopy(table: table.name, reason: "PostgreSQL has a row (\(Self.describe(key, table.key))) that SQLite does not have")
            }
            let differing = identityColumns.filter { source[$0] != row[$0] }.map { table.columns[$0] }
            guard differing.isEmpty else {
                throw .notACopy(table: table.name, reason: "the row \(Self.describe(key, table.key)) differs from SQLite's in \(differing.joined(separator: ", "))")
            }
            if source == row { same.insert(key) } else { stale.insert(key) }
        }
        return (page.filter { row in let key = keyColumns.map { row[$0] }; return !same.contains(key) && !stale.contains(key) },
                page.filter { row in stale.contains(keyColumns.map { row[$0] }) })
    }

    /// PostgreSQL's rows of `table` (its exported columns) whose key is in (`lower`, `upper`], compared as SQLite
    /// orders keys (text by its bytes: `COLLATE "C"`).
    private func rows(of table: ExportedTable, after lower: [ColumnValue]?, through upper: [ColumnValue]?)
        async throws(StoreError) -> [[ColumnValue]] {
        var bindings = PostgresBindings()
        var conditions: [String] = []
        for (bound, comparison) in [(lower, ">"), (upper, "<=")] {
            guard let bound else { continue }
            let key = zip(table.key, bound).map { column, value in
                if case .text = value { return "\(column) COLLATE \"C\"" } else { return column }
            }
            var placeholders: [String] = []
            for (column, value) in zip(table.key, bound) {
                try Self.bind(value, column: column, into: &bindings)
                placeholders.append("$\(bindings.count)")
            }
            conditions.append("(\(key.joined(separator: ", "))) \(comparison) (\(placeholders.joined(separator: ", ")))")
        }
        let sql = "SELECT \(table.columns.joined(separator: ", ")) FROM \(table.name)"
            + (conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND "))
        let query = PostgresQuery(unsafeSQL: sql, binds: bindings)
        let logger = database.logger
        return try await database.withConnection("comparing \(table.name)") { connection in
            var rows: [[ColumnValue]] = []
            for try await row in try await connection.query(query, logger: logger) {
                rows.append(try row.map(Self.value))
            }
            return rows
        }
    }

    /// A PostgreSQL value as SQLite's export has it: booleans as 0 and 1, every integer as 64 bits.
    private static func value(_ cell: PostgresCell) throws -> ColumnValue {
        guard cell.bytes != nil else { return .null }
        switch cell.dataType {
        case .int8: return .integer(try cell.decode(Int64.self))
        case .int4: return .integer(Int64(try cell.decode(Int32.self)))
        case .int2: return .integer(Int64(try cell.decode(Int16.self)))
        case .bool: return .integer(try cell.decode(Bool.self) ? 1 : 0)
        case .float8: return .real(try cell.decode(Double.self))
        case .bytea:
            let buffer = try cell.decode(ByteBuffer.self)
            return .bytes(buffer.getBytes(at: buffer.readerIndex, length: buffer.readableBytes) ?? [])
        default: return .text(try cell.decode(String.self))
        }
    }

    /// A key as an error names it: `id 42`, `username alice, conversation_id 3`.
    private static func describe(_ key: [ColumnValue], _ columns: [String]) -> String {
        zip(columns, key).map { column, value in
            switch value {
            case .null: "\(column) NULL"
            case .integer(let integer): "\(column) \(integer)"
            case .real(let real): "\(column) \(real)"
            case .text(let text): "\(column) \(text.prefix(64))"
            case .bytes(let bytes): "\(column) \(bytes.count) bytes"
            }
        }.joined(separator: ", ")
    }

    /// Writes `rows` of `table` in one transaction: inserted, or over the row with the same key.
    func write(_ rows: [[ColumnValue]], into table: ExportedTable) async throws(StoreError) {
        guard !rows.isEmpty else { return }
        let placeholders = (1...table.columns.count).map { "$\($0)" }.joined(separator: ", ")
        let others = table.columns.filter { !table.key.contains($0) }
        let sql = "INSERT INTO \(table.name) (\(table.columns.joined(separator: ", "))) VALUES (\(placeholders)) "
            + "ON CONFLICT (\(table.key.joined(separator: ", "))) DO UPDATE SET "
            + others.map { "\($0) = EXCLUDED.\($0)" }.joined(separator: ", ")
        let logger = database.logger
        let queries = try rows.map { row throws(StoreError) -> PostgresQuery in
            var bindings = PostgresBindings(capacity: row.count)
            for (column, value) in zip(table.columns, row) { try Self.bind(value, column: column, into: &bindings) }
            return PostgresQuery(unsafeSQL: sql, binds: bindings)
        }
        try await database.withTransaction("copying \(table.name)") { connection in
            for query in queries { try await connection.run(query, logger: logger) }
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
