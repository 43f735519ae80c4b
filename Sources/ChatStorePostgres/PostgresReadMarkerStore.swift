import ChatStore
import PostgresNIO

/// Read markers in PostgreSQL.
public struct PostgresReadMarkerStore: ReadMarkerStore {
    let database: PostgresDatabase

    public init(database: PostgresDatabase) {
        self.database = database
    }

    public func readMarkers() async throws(StoreError) -> [StoredReadMarker] {
        let logger = database.logger
        return try await database.withConnection("reading read markers") { connection in
            try await connection.rows("""
                SELECT r.username, c.customer, r.seq,
                    COALESCE((SELECT customer_ordinal FROM messages m WHERE m.conversation_id = r.conversation_id
                              AND m.seq <= r.seq ORDER BY m.seq DESC LIMIT 1), 0) AS covered
                FROM read_markers r JOIN conversations c ON c.id = r.conversation_id
                """, logger: logger).map { row in
                StoredReadMarker(user: try row.get("username"), customer: try row.get("customer"), seq: try row.int("seq"),
                                 customerMessagesRead: try row.int("covered"))
            }
        }
    }

    public func markRead(user: String, customer: String, seq: Int, audience: Audience) async throws(StoreError) -> StoredReadMarker? {
        let logger = database.logger
        let now = epochMilliseconds()
        return try await database.withTransaction("storing a read marker") { connection -> StoredReadMarker? in
            guard let conversation = try await connection.rows(
                "SELECT id, last_seq FROM conversations WHERE customer = \(customer)", logger: logger).first else { return nil }
            let conversationId: Int64 = try conversation.get("id")
            var target = Int64(min(seq, try conversation.int("last_seq")))
            if audience == .customer {
                target = try await connection.rows("""
                    SELECT seq FROM messages WHERE conversation_id = \(conversationId) AND customer_seq <= \(Int64(seq))
                    ORDER BY customer_seq DESC LIMIT 1
                    """, logger: logger).first?.get("seq", Int64.self) ?? 0
            }
            let stored = try await connection.rows("""
                INSERT INTO read_markers (username, conversation_id, seq, updated_at) VALUES (\(user), \(conversationId), \(target), \(now))
                ON CONFLICT (username, conversation_id)
                DO UPDATE SET seq = GREATEST(read_markers.seq, excluded.seq), updated_at = excluded.updated_at
                RETURNING seq
                """, logger: logger).first?.get("seq", Int64.self) ?? target
            let covered = try await connection.rows("""
                SELECT customer_ordinal,
                    (SELECT customer_seq FROM messages WHERE conversation_id = \(conversationId) AND seq <= \(stored)
                     AND customer_seq IS NOT NULL ORDER BY seq DESC LIMIT 1) AS customer_seq
                FROM messages WHERE conversation_id = \(conversationId) AND seq <= \(stored)
                ORDER BY seq DESC LIMIT 1
                """, logger: logger).first
            return StoredReadMarker(user: user, customer: customer, seq: Int(stored),
                                    customerMessagesRead: try covered?.int("customer_ordinal") ?? 0,
                                    customerSeq: try covered?.get("customer_seq", Int64?.self).map(Int.init) ?? 0)
        }
    }
}
