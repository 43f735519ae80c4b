import GRDB

/// Search on the SQLite database's FTS5 index (`schema/0007_search.sql`), read on GRDB's reader pool.
public struct SQLiteMessageSearch: MessageSearch {
    public let database: ChatDatabase

    public init(database: ChatDatabase) {
        self.database = database
    }

    /// The FTS5 query: each word a quoted string, so no word is ever syntax (AND, NEAR, `*`, `^`), joined by OR so
    /// that a message with some of the words is found and one with more of them ranks higher.
    static func matchExpression(_ words: [String]) -> String {
        words.map { "\"" + $0.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }.joined(separator: " OR ")
    }

    public func search(_ query: SearchQuery) async throws(StoreError) -> [SearchResult] {
        guard !query.words.isEmpty else { return [] }
        let match = Self.matchExpression(query.words)
        var conditions: [String] = []
        var values: [any DatabaseValueConvertible] = [match]
        let isCustomer = query.isCustomer
        if isCustomer {
            // Only what the customer was sent: never a note.
            conditions.append("m.kind = 'message'")
        }
        if let scope = query.scope {
            conditions.append("c.customer = ?")
            values.append(scope)
        }
        values += [query.limit, match]
        // The best matches first, by rank alone (and id, newest first, among equals), and only then their rows and
        // snippets: a snippet in a sorted query is made for every match before the sort, which at a million messages
        // took half the time. Everything in the index is a message or a note, so an agent's search of every
        // conversation needs no join to rank.
        let best = conditions.isEmpty
            ? "SELECT rowid AS id, rank FROM messages_fts WHERE messages_fts MATCH ? ORDER BY rank, rowid DESC LIMIT ?"
            : """
                SELECT m.id AS id, messages_fts.rank AS rank FROM messages_fts
                JOIN messages m ON m.id = messages_fts.rowid JOIN conversations c ON c.id = m.conversation_id
                WHERE messages_fts MATCH ? AND \(conditions.joined(separator: " AND "))
                ORDER BY messages_fts.rank, m.id DESC LIMIT ?
                """
        let arguments = StatementArguments(values)
        // customer_seq is NULL on messages stored by a server from before the support workflow wrote it; until then
        // no notes existed, so seq is the customer's numbering.
        let sql = """
            WITH best AS (\(best))
            SELECT c.customer, m.seq, COALESCE(m.customer_seq, m.seq) AS customer_seq, m.sent_at, m.kind,
                snippet(messages_fts, 0, '\(SearchMarkers.startSQL)', '\(SearchMarkers.endSQL)', '…', 16) AS snippet
            FROM best
            JOIN messages_fts ON messages_fts.rowid = best.id
            JOIN messages m ON m.id = best.id
            JOIN conversations c ON c.id = m.conversation_id
            WHERE messages_fts MATCH ?
            ORDER BY best.rank, best.id DESC
            """
        do {
            return try await database.pool.read { db in
                try Row.fetchAll(db.cachedStatement(sql: sql), arguments: arguments).map { row in
                    SearchResult(conversation: row["customer"], seq: isCustomer ? row["customer_seq"] : row["seq"],
                                 sentAt: row["sent_at"], snippet: SearchMarkers.wire(row["snippet"] ?? ""),
                                 isNote: (row["kind"] as String?) == "note")
                }
            }
        } catch {
            throw .wrap(error)
        }
    }
}
