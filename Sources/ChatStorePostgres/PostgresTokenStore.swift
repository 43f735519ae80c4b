import ChatProtocol
import ChatStore
import Foundation
import PostgresNIO

/// Session tokens in PostgreSQL.
public struct PostgresTokenStore: TokenStore {
    let database: PostgresDatabase

    public init(database: PostgresDatabase) {
        self.database = database
    }

    private static let columns = "id, username, role, created_at, expires_at, revoked_at, last_used_at"

    public func create(username: String, role: Role, expiresAt: Int64?, token: String) async throws(StoreError)
        -> (token: String, record: SessionRecord) {
        guard Names.isValidUsername(username) else { throw .invalidUsername(username) }
        let now = epochMilliseconds()
        let hash = Tokens.hash(token)
        let logger = database.logger
        let record = try await database.withTransaction("creating a token") { connection -> SessionRecord in
            // One role per user, also when two operators create tokens at once.
            try await connection.run("SELECT pg_advisory_xact_lock(hashtext(\(username)))", logger: logger)
            if let existing = try await connection.rows("SELECT role FROM sessions WHERE username = \(username) AND role <> \(role.rawValue) LIMIT 1",
                                                        logger: logger).first {
                throw StoreError.roleConflict(user: username, existing: try existing.get("role"))
            }
            let rows = try await connection.rows("""
                INSERT INTO sessions (username, token_hash, role, created_at, expires_at)
                VALUES (\(username), \(hash), \(role.rawValue), \(now), \(expiresAt)) RETURNING id
                """, logger: logger)
            guard let id = try rows.first?.get("id", Int64.self) else { throw StoreError.notFound("the new token's row") }
            return SessionRecord(id: id, username: username, role: role, createdAt: now, expiresAt: expiresAt, revokedAt: nil,
                                 lastUsedAt: nil)
        }
        return (token, record)
    }

    public func authenticate(token: String, username: String?, now: Int64) async throws(StoreError) -> Result<SessionRecord, AuthFailure> {
        guard !token.isEmpty else { return .failure(.missingToken) }
        let presented = Tokens.hash(token)
        let logger = database.logger
        let candidates = try await database.withConnection("checking a token") { connection in
            try await connection.rows("SELECT \(unescaped: Self.columns), token_hash FROM sessions WHERE token_hash = \(presented)",
                                      logger: logger).compactMap { row -> (SessionRecord, Data)? in
                guard let record = try SessionRecord(postgres: row) else { return nil }
                return (record, try row.get("token_hash", Data.self))
            }
        }
        switch Tokens.choose(candidates, presented: presented, username: username, now: now) {
        case .success(let record):
            _ = try? await database.withConnection("recording token use") { connection in
                try await connection.run("UPDATE sessions SET last_used_at = \(now) WHERE id = \(record.id)", logger: logger)
            }
            return .success(record)
        case .failure(let failure):
            return .failure(failure)
        }
    }

    public func role(of username: String) async throws(StoreError) -> Role? {
        let logger = database.logger
        return try await database.withConnection("looking up a user") { connection in
            try await connection.rows("SELECT role FROM sessions WHERE username = \(username) ORDER BY id DESC LIMIT 1", logger: logger)
                .first.flatMap { Role(rawValue: try $0.get("role", String.self)) }
        }
    }

    public func list() async throws(StoreError) -> [SessionRecord] {
        let logger = database.logger
        return try await database.withConnection("listing tokens") { connection in
            try await connection.rows("SELECT \(unescaped: Self.columns) FROM sessions ORDER BY id DESC", logger: logger)
                .compactMap { try SessionRecord(postgres: $0) }
        }
    }

    @discardableResult
    public func revoke(username: String) async throws(StoreError) -> [SessionRecord] {
        let logger = database.logger
        let revoked = try await database.withTransaction("revoking tokens") { connection in
            try await connection.rows("""
                UPDATE sessions SET revoked_at = \(unescaped: PostgresFanOut.clock) WHERE username = \(username) AND revoked_at IS NULL
                RETURNING \(unescaped: Self.columns)
                """, logger: logger).compactMap { try SessionRecord(postgres: $0) }
        }
        guard !revoked.isEmpty else { throw .notFound("active token for user \(username)") }
        return revoked.sorted { $0.id < $1.id }
    }

    @discardableResult
    public func revoke(id: Int64) async throws(StoreError) -> [SessionRecord] {
        let logger = database.logger
        let revoked = try await database.withTransaction("revoking a token") { connection in
            try await connection.rows("""
                UPDATE sessions SET revoked_at = \(unescaped: PostgresFanOut.clock) WHERE id = \(id) AND revoked_at IS NULL RETURNING \(unescaped: Self.columns)
                """, logger: logger).compactMap { try SessionRecord(postgres: $0) }
        }
        guard !revoked.isEmpty else { throw .notFound("active token with id \(id)") }
        return revoked
    }

    public func rotate(username: String, expiresAt: Int64?, token: String) async throws(StoreError)
        -> (token: String, record: SessionRecord, revoked: [SessionRecord]) {
        let now = epochMilliseconds()
        let hash = Tokens.hash(token)
        let logger = database.logger
        let (record, revoked) = try await database.withTransaction("rotating a token") { connection -> (SessionRecord, [SessionRecord]) in
            try await connection.run("SELECT pg_advisory_xact_lock(hashtext(\(username)))", logger: logger)
            let active = try await connection.rows("""
                SELECT \(unescaped: Self.columns) FROM sessions
                WHERE username = \(username) AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > \(now))
                ORDER BY id DESC
                """, logger: logger).compactMap { try SessionRecord(postgres: $0) }
            guard let newest = active.first else { throw StoreError.notFound("active token for user \(username)") }
            let expiry = expiresAt ?? newest.expiresAt.map { now + ($0 - newest.createdAt) }
            let revokedAt = try await connection.rows("""
                UPDATE sessions SET revoked_at = \(unescaped: PostgresFanOut.clock) WHERE id = ANY(\(active.map(\.id))) RETURNING revoked_at
                """, logger: logger).first?.get("revoked_at", Int64.self)
            let rows = try await connection.rows("""
                INSERT INTO sessions (username, token_hash, role, created_at, expires_at)
                VALUES (\(username), \(hash), \(newest.role.rawValue), \(now), \(expiry)) RETURNING id
                """, logger: logger)
            guard let id = try rows.first?.get("id", Int64.self) else { throw StoreError.notFound("the new token's row") }
            let record = SessionRecord(id: id, username: username, role: newest.role, createdAt: now, expiresAt: expiry,
                                       revokedAt: nil, lastUsedAt: nil)
            return (record, active.map { var revoked = $0; revoked.revokedAt = revokedAt; return revoked })
        }
        return (token, record, revoked)
    }

    public func revokedSessions(since: Int64) async throws(StoreError) -> (ids: [Int64], checkedAt: Int64) {
        let logger = database.logger
        return try await database.withConnection("checking for revoked tokens") { connection in
            // The clock first: a revocation timed after it is also seen by the next look.
            let checkedAt = try await connection.rows("SELECT \(unescaped: PostgresFanOut.clock) AS now", logger: logger)
                .first?.get("now", Int64.self) ?? since
            let rows = try await connection.rows("SELECT id FROM sessions WHERE revoked_at >= \(since)", logger: logger)
            return (try rows.map { try $0.get("id", Int64.self) }, checkedAt)
        }
    }

    public func importLegacy(_ sessions: [LegacySession], role: @escaping @Sendable (String) -> Role, dryRun: Bool)
        async throws(StoreError) -> LegacyImportReport {
        let now = epochMilliseconds()
        let users = Set(sessions.map(\.username)).filter(Names.isValidUsername).sorted()
        let logger = database.logger
        return try await database.withTransaction("importing tokens") { connection in
            // The per-user locks `create` takes, in name order: no role conflict slips in between the check and the insert.
            try await connection.run("SELECT pg_advisory_xact_lock(hashtext(name)) FROM unnest(\(users)::text[]) AS name ORDER BY name",
                                     logger: logger)
            var existing: LegacyImportPlan.Existing = [:]
            for row in try await connection.rows("SELECT username, role, token_hash FROM sessions WHERE username = ANY(\(users)::text[])",
                                                 logger: logger) {
                let (user, role, hash) = (try row.get("username", String.self), try row.get("role", String.self), try row.get("token_hash", Data.self))
                existing[user, default: (role, [])].hashes.insert(hash)
            }
            let plan = LegacyImportPlan(sessions, role: role, existing: existing, dryRun: dryRun)
            // A row at a time: an import is rare, and postgres-nio encodes no arrays of bytea.
            for row in plan.rows where !dryRun {
                try await connection.run("""
                    INSERT INTO sessions (username, token_hash, role, created_at) VALUES (\(row.username), \(row.tokenHash), \(row.role.rawValue), \(now))
                    """, logger: logger)
            }
            return plan.report
        }
    }
}
