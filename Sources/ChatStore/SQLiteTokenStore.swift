import ChatProtocol
import Foundation
import GRDB

/// Session tokens in the SQLite database.
public struct SQLiteTokenStore: TokenStore {
    public let database: ChatDatabase

    public init(database: ChatDatabase) {
        self.database = database
    }

    public func create(username: String, role: Role, expiresAt: Int64?, token: String) async throws(StoreError) -> (token: String, record: SessionRecord) {
        guard Names.isValidUsername(username) else { throw .invalidUsername(username) }
        let now = epochMilliseconds()
        let hash = Tokens.hash(token)
        do {
            let record = try await database.pool.write { db -> SessionRecord in
                if let existing = try String.fetchOne(
                    db, sql: "SELECT role FROM sessions WHERE username = ? AND role != ? LIMIT 1",
                    arguments: [username, role.rawValue]) {
                    throw StoreError.roleConflict(user: username, existing: existing)
                }
                try db.execute(
                    sql: "INSERT INTO sessions (username, token_hash, role, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                    arguments: [username, hash, role.rawValue, now, expiresAt])
                return SessionRecord(id: db.lastInsertedRowID, username: username, role: role, createdAt: now,
                                     expiresAt: expiresAt, revokedAt: nil, lastUsedAt: nil)
            }
            return (token, record)
        } catch {
            throw StoreError.wrap(error)
        }
    }

    public func authenticate(token: String, username: String?, now: Int64)
        async throws(StoreError) -> Result<SessionRecord, AuthFailure> {
        guard !token.isEmpty else { return .failure(.missingToken) }
        let presented = Tokens.hash(token)
        let candidates: [(SessionRecord, Data)]
        do {
            candidates = try await database.pool.read { db in
                try Row.fetchAll(db, sql: """
                    SELECT id, username, role, created_at, expires_at, revoked_at, last_used_at, token_hash
                    FROM sessions WHERE token_hash = ?
                    """, arguments: [presented]).compactMap { row in
                        guard let record = SessionRecord(row: row) else { return nil }
                        return (record, row["token_hash"] as Data)
                    }
            }
        } catch {
            throw StoreError.wrap(error)
        }
        let record: SessionRecord
        switch Tokens.choose(candidates, presented: presented, username: username, now: now) {
        case .success(let found): record = found
        case .failure(let failure): return .failure(failure)
        }
        try? await database.pool.write { db in
            try db.execute(sql: "UPDATE sessions SET last_used_at = ? WHERE id = ?", arguments: [now, record.id])
        }
        return .success(record)
    }

    public func role(of username: String) async throws(StoreError) -> Role? {
        do {
            return try await database.pool.read { db in
                try String.fetchOne(db, sql: "SELECT role FROM sessions WHERE username = ? ORDER BY id DESC LIMIT 1", arguments: [username])
                    .flatMap(Role.init(rawValue:))
            }
        } catch {
            throw StoreError.wrap(error)
        }
    }

    public func list() async throws(StoreError) -> [SessionRecord] {
        do {
            return try await database.pool.read { db in
                try Row.fetchAll(db, sql: """
                    SELECT id, username, role, created_at, expires_at, revoked_at, last_used_at
                    FROM sessions ORDER BY id DESC
                    """).compactMap(SessionRecord.init(row:))
            }
        } catch {
            throw StoreError.wrap(error)
        }
    }

    @discardableResult
    public func revoke(username: String) async throws(StoreError) -> [SessionRecord] {
        try await revoke(where: "username = ?", arguments: [username], what: "active token for user \(username)")
    }

    @discardableResult
    public func revoke(id: Int64) async throws(StoreError) -> [SessionRecord] {
        try await revoke(where: "id = ?", arguments: [id], what: "active token with id \(id)")
    }

    private func revoke(where condition: String, arguments: StatementArguments, what: String) async throws(StoreError)
        -> [SessionRecord] {
        let now = epochMilliseconds()
        do {
            let revoked = try await database.pool.write { db -> [SessionRecord] in
                let rows = try Row.fetchAll(db, sql: """
                    SELECT id, username, role, created_at, expires_at, revoked_at, last_used_at
                    FROM sessions WHERE \(condition) AND revoked_at IS NULL
                    """, arguments: arguments).compactMap(SessionRecord.init(row:))
                try db.execute(sql: "UPDATE sessions SET revoked_at = ? WHERE \(condition) AND revoked_at IS NULL",
                               arguments: [now] + arguments)
                return rows.map { var r = $0; r.revokedAt = now; return r }
            }
            guard !revoked.isEmpty else { throw StoreError.notFound(what) }
            return revoked
        } catch {
            throw StoreError.wrap(error)
        }
    }

    public func rotate(username: String, expiresAt: Int64?, token: String) async throws(StoreError)
        -> (token: String, record: SessionRecord, revoked: [SessionRecord]) {
        let now = epochMilliseconds()
        let hash = Tokens.hash(token)
        do {
            let (record, revoked) = try await database.pool.write { db -> (SessionRecord, [SessionRecord]) in
                let active = try Row.fetchAll(db, sql: """
                    SELECT id, username, role, created_at, expires_at, revoked_at, last_used_at
                    FROM sessions WHERE username = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)
                    ORDER BY id DESC
                    """, arguments: [username, now]).compactMap(SessionRecord.init(row:))
                guard let newest = active.first else {
                    throw StoreError.notFound("active token for user \(username)")
                }
                let lifetime = newest.expiresAt.map { $0 - newest.createdAt }
                let expiry = expiresAt ?? lifetime.map { now + $0 }
                try db.execute(sql: "UPDATE sessions SET revoked_at = ? WHERE id IN (\(active.map { String($0.id) }.joined(separator: ",")))",
                               arguments: [now])
                try db.execute(
                    sql: "INSERT INTO sessions (username, token_hash, role, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                    arguments: [username, hash, newest.role.rawValue, now, expiry])
                let record = SessionRecord(id: db.lastInsertedRowID, username: username, role: newest.role, createdAt: now,
                                           expiresAt: expiry, revokedAt: nil, lastUsedAt: nil)
                return (record, active.map { var r = $0; r.revokedAt = now; return r })
            }
            return (token, record, revoked)
        } catch {
            throw StoreError.wrap(error)
        }
    }

    public func revokedSessions(since: Int64) async throws(StoreError) -> (ids: [Int64], checkedAt: Int64) {
        do {
            // Revocations are timed by this host's clock (the database is a local file): read it before the rows.
            let checkedAt = epochMilliseconds()
            return try await database.pool.read { db in
                let ids = try Int64.fetchAll(db, sql: "SELECT id FROM sessions WHERE revoked_at >= ?", arguments: [since])
                return (ids, checkedAt)
            }
        } catch {
            throw StoreError.wrap(error)
        }
    }
}

extension SessionRecord {
    init?(row: Row) {
        guard let role = Role(rawValue: row["role"]) else { return nil }
        self.init(id: row["id"], username: row["username"], role: role, createdAt: row["created_at"],
                  expiresAt: row["expires_at"], revokedAt: row["revoked_at"], lastUsedAt: row["last_used_at"])
    }
}

