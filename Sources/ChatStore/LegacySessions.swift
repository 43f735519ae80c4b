import ChatProtocol
import Foundation
import GRDB

/// One row of the original system's `Sessions(id, username, session_token)` table, token in clear.
public struct LegacySession: Sendable, Equatable {
    public var id: Int64
    public var username: String
    public var token: String

    public init(id: Int64, username: String, token: String) {
        self.id = id
        self.username = username
        self.token = token
    }

    /// Reads the `Sessions` table of the original system's `session_tokens.db`, read-only. A missing file, a file
    /// that is not SQLite, or a database without `Sessions(username, session_token)` is refused with the reason.
    public static func read(path: String) throws(StoreError) -> [LegacySession] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw .unreadableImport(path: path, reason: "no such file")
        }
        guard !isDirectory.boolValue else {
            throw .unreadableImport(path: path, reason: "a directory; give the session_tokens.db file itself")
        }
        var configuration = Configuration()
        configuration.readonly = true
        do {
            let queue = try DatabaseQueue(path: path, configuration: configuration)
            defer { try? queue.close() }
            return try queue.read { db -> [LegacySession] in
                // Table and column names are case-insensitive in SQLite; match them the same way.
                guard let table = try String.fetchOne(db, sql: """
                    SELECT name FROM sqlite_master WHERE type = 'table' AND lower(name) = 'sessions'
                    """) else {
                    throw StoreError.unreadableImport(path: path, reason: "no Sessions table: this is not the original system's session_tokens.db")
                }
                let columns = Set(try db.columns(in: table).map { $0.name.lowercased() })
                let missing = ["username", "session_token"].filter { !columns.contains($0) }
                guard missing.isEmpty else {
                    throw StoreError.unreadableImport(path: path, reason: "the Sessions table has no \(missing.joined(separator: " or ")) column")
                }
                let id = columns.contains("id") ? "id" : "rowid"
                return try Row.fetchAll(db, sql: "SELECT \(id) AS id, username, session_token FROM \"\(table)\" ORDER BY 1")
                    .map { row in
                        // Values of any storage class are read as text; NULLs become "" and are refused on import.
                        LegacySession(id: row["id"] ?? 0, username: (row["username"] as String?) ?? "",
                                      token: (row["session_token"] as String?) ?? "")
                    }
            }
        } catch let error as StoreError {
            throw error
        } catch let error as DatabaseError where error.resultCode == .SQLITE_NOTADB {
            throw .unreadableImport(path: path, reason: "not an SQLite database")
        } catch {
            throw .unreadableImport(path: path, reason: "\(error)")
        }
    }
}

/// A `Sessions` table in the original system's shape, tokens in clear and a role beside them: what the load
/// generator's peer server reads tokens from.
public struct LegacySessionsFile: Sendable {
    private let queue: DatabaseQueue

    /// Creates the file with an empty table.
    public init(creatingAt path: String) throws(StoreError) {
        do {
            queue = try DatabaseQueue(path: path)
            try queue.write { db in
                try db.execute(sql: "CREATE TABLE Sessions (id INTEGER PRIMARY KEY, username TEXT, session_token TEXT, role TEXT)")
            }
        } catch {
            throw .cannotOpen(path: path, cause: DatabaseFailure(error))
        }
    }

    public func add(username: String, token: String, role: Role) throws(StoreError) {
        do {
            try queue.write { db in
                try db.execute(sql: "INSERT INTO Sessions (username, session_token, role) VALUES (?, ?, ?)",
                               arguments: [username, token, role.rawValue])
            }
        } catch {
            throw .wrap(error)
        }
    }
}

/// What `TokenStore.importLegacy` did (or, in a dry run, would do) with each row.
public struct LegacyImportReport: Sendable, Codable, Equatable {
    public struct Skipped: Sendable, Codable, Equatable {
        public var id: Int64
        public var user: String
        public var reason: String
    }

    /// Users whose token was stored (hashed), in file order.
    public var imported: [String] = []
    /// Users whose token was already stored: importing twice changes nothing.
    public var alreadyPresent: [String] = []
    public var skipped: [Skipped] = []
    /// Imported users whose token is shorter than `weakTokenLength`: the original system allowed guessable tokens,
    /// so the operator is told to rotate them.
    public var weak: [String] = []
    public var dryRun: Bool

    public static let weakTokenLength = 20
}

/// The legacy import, whatever the store: which rows to store and what to report, given the tokens the file's users
/// already have. Each store reads those (`existing`), runs this, and inserts `rows` in one transaction.
public struct LegacyImportPlan: Sendable {
    public struct Row: Sendable {
        public var username: String
        public var tokenHash: Data
        public var role: Role
    }

    /// The users' current role and token hashes, by username.
    public typealias Existing = [String: (role: String, hashes: Set<Data>)]

    public private(set) var report: LegacyImportReport
    public private(set) var rows: [Row] = []

    /// Rows with an invalid username, an empty token or a role conflict are skipped with the reason; a (user, token)
    /// already stored, or twice in the file, is reported and stored once.
    public init(_ sessions: [LegacySession], role: (String) -> Role, existing: Existing, dryRun: Bool) {
        report = LegacyImportReport(dryRun: dryRun)
        var known = existing
        for session in sessions {
            let user = session.username
            guard Names.isValidUsername(user) else {
                report.skipped.append(.init(id: session.id, user: user, reason: "invalid username: use 1 to 64 letters, digits, '.', '_', '-' or '@'"))
                continue
            }
            guard !session.token.isEmpty else {
                report.skipped.append(.init(id: session.id, user: user, reason: "empty token"))
                continue
            }
            let wanted = role(user)
            if let current = known[user]?.role, current != wanted.rawValue {
                report.skipped.append(.init(id: session.id, user: user, reason: "already has \(current) tokens; a user has one role"))
                continue
            }
            let hash = Tokens.hash(session.token)
            if known[user]?.hashes.contains(hash) == true {
                report.alreadyPresent.append(user)
                continue
            }
            known[user, default: (wanted.rawValue, [])].hashes.insert(hash)
            rows.append(Row(username: user, tokenHash: hash, role: wanted))
            report.imported.append(user)
            if session.token.count < LegacyImportReport.weakTokenLength { report.weak.append(user) }
        }
    }
}

extension SQLiteTokenStore {
    /// Stores the legacy rows' tokens hashed, with `role(username)` as role and no expiry, in one transaction
    /// (see `LegacyImportPlan`). Idempotent. `dryRun` reports without writing.
    public func importLegacy(_ sessions: [LegacySession], role: @escaping @Sendable (String) -> Role, dryRun: Bool)
        async throws(StoreError) -> LegacyImportReport {
        let now = epochMilliseconds()
        let users = Array(Set(sessions.map(\.username)))
        do {
            return try await database.pool.write { db in
                var existing: LegacyImportPlan.Existing = [:]
                for start in stride(from: 0, to: users.count, by: 500) {
                    let chunk = Array(users[start..<min(start + 500, users.count)])
                    let marks = Array(repeating: "?", count: chunk.count).joined(separator: ", ")
                    for row in try Row.fetchAll(db, sql: "SELECT username, role, token_hash FROM sessions WHERE username IN (\(marks))",
                                                arguments: StatementArguments(chunk)) {
                        let user: String = row["username"]
                        existing[user, default: (row["role"], [])].hashes.insert(row["token_hash"])
                    }
                }
                let plan = LegacyImportPlan(sessions, role: role, existing: existing, dryRun: dryRun)
                if !dryRun {
                    for row in plan.rows {
                        try db.execute(sql: "INSERT INTO sessions (username, token_hash, role, created_at) VALUES (?, ?, ?, ?)",
                                       arguments: [row.username, row.tokenHash, row.role.rawValue, now])
                    }
                }
                return plan.report
            }
        } catch {
            throw StoreError.wrap(error)
        }
    }
}
