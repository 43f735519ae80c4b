// Search frames: full-text search of stored messages. docs/PROTOCOL.md (Search) describes them.

/// Searches stored messages. Agents search every conversation (private notes included) or, with `conversation`,
/// one customer's; customers only their own conversation's messages. The server answers `searchResults`, or an
/// `error` (`invalid_frame`, `ref` = `requestId`) for a query it cannot search.
public struct SearchRequest: Codable, Sendable, Equatable {
    public var requestId: String?
    /// Words to find. Quotes, operators and punctuation have no meaning: only the words count.
    public var query: String
    /// Agents: narrow to one customer's conversation. Customers: leave out, or their own name.
    public var conversation: String?
    /// At most this many results (default 20, at most 100).
    public var limit: Int?

    public init(requestId: String? = nil, query: String, conversation: String? = nil, limit: Int? = nil) {
        self.requestId = requestId
        self.query = query
        self.conversation = conversation
        self.limit = limit
    }
}

/// One message that matched a search.
public struct SearchHit: Codable, Sendable, Equatable {
    public var conversation: String
    /// The message's sequence number as the one who searched numbers it (a customer's numbering skips notes).
    public var seq: Int
    public var sentAt: Int64
    /// Part of the text around the match; matched words are between `[` and `]`, and a literal `[`, `]` or `\` of
    /// the text is escaped with `\` (see `SearchSnippet`). `…` marks text cut off.
    public var snippet: String
    /// True for an agent's private note (only agents get notes); absent for messages.
    public var isPrivate: Bool?

    enum CodingKeys: String, CodingKey {
        case conversation, seq, sentAt, snippet, isPrivate = "private"
    }

    public init(conversation: String, seq: Int, sentAt: Int64, snippet: String, isPrivate: Bool? = nil) {
        self.conversation = conversation
        self.seq = seq
        self.sentAt = sentAt
        self.snippet = snippet
        self.isPrivate = isPrivate
    }
}

/// The answer to `search`: the best matches first (relevance, then newest).
public struct SearchResults: Codable, Sendable, Equatable {
    public var requestId: String?
    public var results: [SearchHit]

    public init(requestId: String?, results: [SearchHit]) {
        self.requestId = requestId
        self.results = results
    }
}

/// The highlighting of search snippets on the wire: `[` opens a match and `]` closes it; `\[`, `\]` and `\\` are
/// the text's own brackets and backslashes. Readable as it is, and unambiguous for a client that highlights.
public enum SearchSnippet {
    /// A run of a snippet: plain text, or a matched word.
    public struct Run: Sendable, Equatable {
        public var text: String
        public var isMatch: Bool

        public init(text: String, isMatch: Bool) {
            self.text = text
            self.isMatch = isMatch
        }
    }

    /// The wire form of `text`, in which the store marked matches with `start` and `end`.
    public static func encode(_ text: String, start: Character, end: Character) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count + 8)
        var inMatch = false
        for character in text {
            switch character {
            case start where !inMatch:
                result.append("[")
                inMatch = true
            case end where inMatch:
                result.append("]")
                inMatch = false
            case start, end:
                continue  // unbalanced markers (the text itself held one): dropped rather than shown
            case "[", "]", "\\":
                result.append("\\")
                result.append(character)
            default:
                result.append(character)
            }
        }
        if inMatch { result.append("]") }
        return result
    }

    /// The runs of a wire snippet, for display.
    public static func decode(_ snippet: String) -> [Run] {
        var runs: [Run] = []
        var current = ""
        var inMatch = false
        var escaped = false
        func flush() {
            if !current.isEmpty { runs.append(Run(text: current, isMatch: inMatch)) }
            current = ""
        }
        for character in snippet {
            if escaped {
                current.append(character)
                escaped = false
                continue
            }
            switch character {
            case "\\": escaped = true
            case "[" where !inMatch:
                flush()
                inMatch = true
            case "]" where inMatch:
                flush()
                inMatch = false
            default: current.append(character)
            }
        }
        flush()
        return runs
    }
}
