import ChatProtocol
import ChatStore

/// `search`: full-text search of the stored messages the user may see. The store does the work on its own threads
/// (GRDB's reader pool, or PostgreSQL), never on an event loop. A connection's frames are handled one at a time, so
/// each connection has at most one search running, and the frame rate limit bounds how often it searches.
enum SearchFrames {
    static func search(_ request: SearchRequest, in context: inout FrameContext) async {
        let ref = request.requestId
        let size = request.query.utf8.count
        guard size <= SearchQuery.maxQueryBytes else {
            context.reject(.invalidFrame, "field \"query\" has \(size) bytes; at most \(SearchQuery.maxQueryBytes) are searched", ref: ref)
            return
        }
        let audience: SearchAudience
        var conversation: String?
        switch context.connection.role {
        case .customer:
            // Their own conversation, whatever they name (another name is refused).
            guard let own = context.resolve(request.conversation, ref: ref) else { return }
            audience = .customer(own)
        case .agent:
            if let requested = request.conversation {
                guard Names.isValidUsername(requested) else {
                    context.reject(.invalidFrame, "field \"conversation\" is not a valid username", ref: ref)
                    return
                }
                conversation = requested
            }
            audience = .agent
        }
        let words = SearchQuery.words(in: request.query)
        guard !words.isEmpty else {
            context.reject(.invalidFrame, "field \"query\" has no words to search for (letters or digits)", ref: ref)
            return
        }
        let query = SearchQuery(words: words, audience: audience, conversation: conversation,
                                limit: request.limit ?? SearchQuery.defaultLimit)
        do {
            let found = try await context.services.search.search(query)
            context.send(.searchResults(SearchResults(requestId: ref, results: found.map {
                SearchHit(conversation: $0.conversation, seq: $0.seq, sentAt: $0.sentAt, snippet: $0.snippet,
                          isPrivate: $0.isNote ? true : nil)
            })))
        } catch {
            context.services.logger.warning("search failed", metadata: ["error": "\(error)"])
            context.send(.error(ErrorFrame(code: .storeFailed, message: "the search could not be run; try again", ref: ref)))
        }
    }
}
