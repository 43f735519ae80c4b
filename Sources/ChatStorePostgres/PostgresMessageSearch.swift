import ChatStore
import PostgresNIO

/// Search on PostgreSQL's full-text index (`schema/postgres/0006_search.sql`).
public struct PostgresMessageSearch: MessageSearch {
    let database: PostgresDatabase

    public init(database: PostgresDatabase) {
        self.database = database
    }

    /// The same expression as the index's, so the planner uses it.
    static let document = "to_tsvector('simple'::regconfig, chat_search_text(m.body))"

    public func search(_ query: SearchQuery) async throws(StoreError) -> [SearchResult] {
        guard !query.words.isEmpty else { return [] }
        // Each word is a bound parameter made into a tsquery by plainto_tsquery, which has no syntax to get wrong;
        // the words are joined with OR (||), so a message with more of them ranks higher.
        var binds = PostgresBindings()
        var terms: [String] = []
        for word in query.words {
            binds.append(word)
            terms.append("plainto_tsquery('simple'::regconfig, chat_search_text($\(binds.count)))")
        }
        var conditions = ["\(Self.document) @@ q.query", "m.kind IN ('message', 'note')"]
        let isCustomer = query.isCustomer
        if isCustomer {
            conditions.append("m.kind = 'message'")  // only what the customer was sent: never a note
        }
        if let scope = query.scope {
            binds.append(scope)
            conditions.append("c.customer = $\(binds.count)")
        }
        binds.append(Int64(query.limit))
        // customer_seq is NULL on messages stored before the support workflow wrote it; until then no notes existed,
        // so seq is the customer's numbering.
        let sql = """
            WITH q AS (SELECT \(terms.joined(separator: " || ")) AS query)
            SELECT c.customer, m.seq, COALESCE(m.customer_seq, m.seq) AS customer_seq, m.sent_at, m.kind, m.body
            FROM q, messages m JOIN conversations c ON c.id = m.conversation_id
            WHERE \(conditions.joined(separator: " AND "))
            ORDER BY ts_rank(\(Self.document), q.query) DESC, m.sent_at DESC, m.id DESC
            LIMIT $\(binds.count)
            """
        let statement = PostgresQuery(unsafeSQL: sql, binds: binds)
        let logger = database.logger
        let words = query.words
        return try await database.withConnection("searching messages") { connection in
            try await connection.rows(statement, logger: logger).map { row in
                SearchResult(conversation: try row.get("customer"), seq: try row.int(isCustomer ? "customer_seq" : "seq"),
                             sentAt: try row.get("sent_at"),
                             snippet: SearchMarkers.snippet(of: try row.get("body"), words: words),
                             isNote: try row.get("kind", String.self) == "note")
            }
        }
    }
}
