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
            throw .cannotOpen(path: path, reason: "\(error)")
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

extension SQLiteTokenStore {
    /// Stores the legacy rows' tokens hashed, with `role(username)` as role and no expiry, in one transaction.
    /// Idempotent: a (user, token) already stored is reported, not duplicated. Rows with an invalid username, an
    /// empty token or a role conflict are skipped with the reason. `dryRun` reports without writing.
    public func importLegacy(_ sessions: [LegacySession], role: @Sendable (String) -> Role, dryRun: Bool)
        async throws(StoreError) -> LegacyImportReport {
        let now = epochMilliseconds()
        let work = { @Sendable (db: Database) throws -> LegacyImportReport in
            var report = LegacyImportReport(dryRun: dryRun)
            var roles: [String: String] = [:]
            var seen: Set<String> = []  // user + hash of rows taken in this run, so a dry run sees in-file repeats
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
                let wanted = role(user).rawValue
                let existingRole = try roles[user] ?? String.fetchOne(db, sql: "SELECT role FROM sessions WHERE username = ? LIMIT 1", arguments: [user])
                if let existingRole, existingRole != wanted {
                    report.skipped.append(.init(id: session.id, user: user, reason: "already has \(existingRole) tokens; a user has one role"))
                    continue
                }
                let hash = Tokens.hash(session.token)
                let key = user + "\u{0}" + hash.base64EncodedString()
                if try seen.contains(key) || Bool.fetchOne(db, sql: "SELECT 1 FROM sessions WHERE username = ? AND token_hash = ?", arguments: [user, hash]) ?? false {
                    report.alreadyPresent.append(user)
                    continue
                }
                if !dryRun {
                    try db.execute(
                        sql: "INSERT INTO sessions (username, token_hash, role, created_at) VALUES (?, ?, ?, ?)",
                        arguments: [user, hash, wanted, now])
                }
                roles[user] = wanted
                seen.insert(key)
                report.imported.append(user)
                if session.token.count < LegacyImportReport.weakTokenLength { report.weak.append(user) }
            }
            return report
        }
        do {
            return dryRun ? try await database.pool.read(work) : try await database.pool.write(work)
        } catch {
            throw StoreError.wrap(error)
        }
    }
}
