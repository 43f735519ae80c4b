import ChatProtocol
import ChatStore
import PostgresNIO

/// Canned replies in PostgreSQL.
public struct PostgresCannedReplyStore: CannedReplyStore {
    let database: PostgresDatabase

    public init(database: PostgresDatabase) {
        self.database = database
    }

    public func cannedReplies() async throws(StoreError) -> [CannedReply] {
        let logger = database.logger
        return try await database.withConnection("reading canned replies") { connection in
            try await connection.rows("SELECT name, body FROM canned_replies ORDER BY name", logger: logger).map {
                CannedReply(name: try $0.get("name"), text: try $0.get("body"))
            }
        }
    }

    @discardableResult
    public func save(_ reply: CannedReply) async throws(StoreError) -> Bool {
        let logger = database.logger
        let now = epochMilliseconds()
        return try await database.withTransaction("storing a canned reply") { connection in
            let existed = try await !connection.rows("SELECT 1 AS found FROM canned_replies WHERE name = \(reply.name) FOR UPDATE",
                                                     logger: logger).isEmpty
            try await connection.run("""
                INSERT INTO canned_replies (name, body, updated_at) VALUES (\(reply.name), \(reply.text), \(now))
                ON CONFLICT (name) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at
                """, logger: logger)
            return existed
        }
    }

    @discardableResult
    public func removeCannedReply(named name: String) async throws(StoreError) -> Bool {
        let logger = database.logger
        return try await database.withConnection("removing a canned reply") { connection in
            try await !connection.rows("DELETE FROM canned_replies WHERE name = \(name) RETURNING name", logger: logger).isEmpty
        }
    }
}
