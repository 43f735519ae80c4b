import GRDB

/// Search on the SQLite database's FTS5 index (`schema/0007_search.sql`), read on GRDB's reader pool.
public struct SQLiteMessageSearch: MessageSearch {
    public let database: ChatDatabase

    public init(database: ChatDatabase) {
        self.database = database
    }

    /// The FTS5 query: each word a quoted string, so no word is ever syntax (AND, NEAR, `*`, `^`), joined by OR so
    /// that a message with some of the words is found and one with more of them ranks higher; and, to narrow the
    /// search, the `search_scope` words allowed (one per conversation and kind, such as "c42m"), which the index
    /// intersects.
    static func matchExpression(_ words: [String], scope: [String] = []) -> String {
        func quoted(_ word: String) -> String { "\"" + word.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
        let text = "body : (" + words.map(quoted).joined(separator: " OR ") + ")"
        guard !scope.isEmpty else { return text }
        return "search_scope : (" + scope.map(quoted).joined(separator: " OR ") + ") AND " + text
    }

    /// Matches ranked at most, newest first: ranking scores every match it considers, so a common word in a large
    /// database would cost in proportion to its thousands of matches; the best of the newest few thousand are
    /// what an agent looks for, and the cost stays bounded.
    static let rankedMatches = 4000

    public func search(_ query: SearchQuery) async throws(StoreError) -> [SearchResult] {
        guard !query.words.isEmpty else { return [] }
        let isCustomer = query.isCustomer
        let (scope, limit) = (query.scope, query.limit)
        let sql = """
            WITH matched AS (
                SELECT rowid AS id, bm25(messages_fts, 1.0, 0.0) AS rank FROM messages_fts WHERE messages_fts MATCH ?
                ORDER BY rowid DESC LIMIT \(Self.rankedMatches)
            ), best AS (SELECT id, rank FROM matched ORDER BY rank, id DESC LIMIT ?)
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
                var narrowing: [String] = []
                if let scope {
                    // An unknown name finds nothing (no id to narrow to).
                    guard let id = try Int64.fetchOne(db, sql: "SELECT id FROM conversations WHERE customer = ?", arguments: [scope]) else {
                        return []
                    }
                    // Only what the customer was sent: never a note.
                    narrowing = isCustomer ? ["c\(id)m"] : ["c\(id)m", "c\(id)n"]
                }
                let match = Self.matchExpression(query.words, scope: narrowing)
                return try Row.fetchAll(db.cachedStatement(sql: sql), arguments: [match, limit, match]).map { row in
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
