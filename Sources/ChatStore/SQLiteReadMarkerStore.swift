import ChatProtocol
import GRDB

/// Read markers in the SQLite database.
public struct SQLiteReadMarkerStore: ReadMarkerStore {
    public let database: ChatDatabase

    public init(database: ChatDatabase) {
        self.database = database
    }

    public func readMarkers() async throws(StoreError) -> [StoredReadMarker] {
        do {
            return try await database.pool.read { db in
                try Row.fetchAll(db, sql: """
                    SELECT r.username, c.customer, r.seq,
                        COALESCE((SELECT customer_ordinal FROM messages m WHERE m.conversation_id = r.conversation_id
                                  AND m.seq <= r.seq ORDER BY m.seq DESC LIMIT 1), 0) AS covered
                    FROM read_markers r JOIN conversations c ON c.id = r.conversation_id
                    """).map { StoredReadMarker(user: $0["username"], customer: $0["customer"], seq: $0["seq"], customerMessagesRead: $0["covered"]) }
            }
        } catch {
            throw .wrap(error)
        }
    }

    public func markRead(user: String, customer: String, seq: Int, audience: Audience) async throws(StoreError) -> StoredReadMarker? {
        do {
            return try await database.pool.write { db in
                guard let row = try Row.fetchOne(db, sql: "SELECT id, last_seq FROM conversations WHERE customer = ?",
                                                 arguments: [customer]) else { return nil }
                let conversationId: Int64 = row["id"]
                var target = min(seq, row["last_seq"] as Int)
                if audience == .customer {
                    target = try Int.fetchOne(db, sql: """
                        SELECT seq FROM messages WHERE conversation_id = ? AND customer_seq <= ? ORDER BY customer_seq DESC LIMIT 1
                        """, arguments: [conversationId, seq]) ?? 0
                }
                try db.execute(sql: """
                    INSERT INTO read_markers (username, conversation_id, seq, updated_at) VALUES (?, ?, ?, ?)
                    ON CONFLICT (username, conversation_id) DO UPDATE SET seq = max(seq, excluded.seq), updated_at = excluded.updated_at
                    """, arguments: [user, conversationId, target, epochMilliseconds()])
                let stored = try Int.fetchOne(db, sql: "SELECT seq FROM read_markers WHERE username = ? AND conversation_id = ?",
                                              arguments: [user, conversationId]) ?? target
                let covered = try Row.fetchOne(db, sql: """
                    SELECT customer_ordinal,
                        (SELECT customer_seq FROM messages WHERE conversation_id = ?1 AND seq <= ?2 AND customer_seq IS NOT NULL
                         ORDER BY seq DESC LIMIT 1) AS customer_seq
                    FROM messages WHERE conversation_id = ?1 AND seq <= ?2 ORDER BY seq DESC LIMIT 1
                    """, arguments: [conversationId, stored])
                return StoredReadMarker(user: user, customer: customer, seq: stored, customerMessagesRead: covered?["customer_ordinal"] ?? 0,
                                        customerSeq: covered?["customer_seq"] ?? 0)
            }
        } catch {
            throw .wrap(error)
        }
    }
}
