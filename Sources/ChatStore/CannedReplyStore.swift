import ChatProtocol
import GRDB

/// The canned replies operators keep for agents.
public protocol CannedReplyStore: Sendable {
    /// Every canned reply, sorted by name.
    func cannedReplies() async throws(StoreError) -> [CannedReply]

    /// Stores `reply`, replacing one of the same name. Returns whether it replaced one.
    @discardableResult
    func save(_ reply: CannedReply) async throws(StoreError) -> Bool

    /// Removes the reply named `name`. Returns whether there was one.
    @discardableResult
    func removeCannedReply(named name: String) async throws(StoreError) -> Bool
}

/// Canned replies in the SQLite database.
public struct SQLiteCannedReplyStore: CannedReplyStore {
    public let database: ChatDatabase

    public init(database: ChatDatabase) {
        self.database = database
    }

    public func cannedReplies() async throws(StoreError) -> [CannedReply] {
        do {
            return try await database.pool.read { db in
                try Row.fetchAll(db, sql: "SELECT name, body FROM canned_replies ORDER BY name").map {
                    CannedReply(name: $0["name"], text: $0["body"])
                }
            }
        } catch {
            throw .wrap(error)
        }
    }

    @discardableResult
    public func save(_ reply: CannedReply) async throws(StoreError) -> Bool {
        do {
            return try await database.pool.write { db in
                let existed = try Bool.fetchOne(db, sql: "SELECT 1 FROM canned_replies WHERE name = ?", arguments: [reply.name]) ?? false
                try db.execute(sql: """
                    INSERT INTO canned_replies (name, body, updated_at) VALUES (?, ?, ?)
                    ON CONFLICT (name) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at
                    """, arguments: [reply.name, reply.text, epochMilliseconds()])
                return existed
            }
        } catch {
            throw .wrap(error)
        }
    }

    @discardableResult
    public func removeCannedReply(named name: String) async throws(StoreError) -> Bool {
        do {
            return try await database.pool.write { db in
                try db.execute(sql: "DELETE FROM canned_replies WHERE name = ?", arguments: [name])
                return db.changesCount > 0
            }
        } catch {
            throw .wrap(error)
        }
    }
}
