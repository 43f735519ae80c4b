import Foundation
import ChatProtocol

/// Who searches, which decides what they may find and how it is numbered.
public enum SearchAudience: Sendable, Equatable {
    /// Every conversation, messages and private notes, numbered by `seq`.
    case agent
    /// One customer's own conversation, messages only, numbered by `customer_seq`.
    case customer(String)
}

/// A search, already checked: at least one word, at most `SearchQuery.maxWords`.
public struct SearchQuery: Sendable, Equatable {
    /// Longest query text accepted, in UTF-8 bytes.
    public static let maxQueryBytes = 1000
    /// Words beyond these are ignored: each is a term the index looks up.
    public static let maxWords = 16
    public static let defaultLimit = 20
    public static let maxLimit = 100

    /// The words to find, as typed (case and accents are folded by the index's tokeniser). Any message with one of
    /// them matches; more of them, and more often, ranks higher.
    public var words: [String]
    public var audience: SearchAudience
    /// Agents: only this customer's conversation. Ignored for customers (always their own).
    public var conversation: String?
    public var limit: Int

    public init(words: [String], audience: SearchAudience, conversation: String? = nil, limit: Int = SearchQuery.defaultLimit) {
        self.words = words
        self.audience = audience
        self.conversation = conversation
        self.limit = min(max(limit, 1), Self.maxLimit)
    }

    /// A customer's search: only messages (never a note), numbered by `customer_seq`.
    public var isCustomer: Bool {
        if case .customer = audience { true } else { false }
    }

    /// The conversation the search is narrowed to, if any.
    public var scope: String? {
        switch audience {
        case .agent: conversation
        case .customer(let customer): customer
        }
    }

    /// The words of a query as a user typed it: runs of letters, digits and their combining marks; everything else
    /// (quotes, operators' punctuation, `*`, `^`, brackets) separates words and means nothing. So no user text ever
    /// reaches a database's query syntax; the stores quote each word. Words like AND, OR, NEAR stay plain words.
    public static func words(in text: String) -> [String] {
        var words: [String] = []
        var current = ""
        for character in text {
            if character.isLetter || character.isNumber {
                current.append(character)
            } else if !current.isEmpty {
                words.append(current)
                current = ""
            }
        }
        if !current.isEmpty { words.append(current) }
        var seen = Set<String>()
        // Repeats add nothing to a match; the first `maxWords` distinct words count.
        return Array(words.filter { seen.insert($0.lowercased()).inserted }.prefix(maxWords))
    }
}

/// One message found, as its searcher may see it.
public struct SearchResult: Sendable, Equatable {
    public var conversation: String
    /// `seq` for agents, `customer_seq` for customers.
    public var seq: Int
    public var sentAt: Int64
    /// The text around the match, in the wire form of `ChatProtocol.SearchSnippet`.
    public var snippet: String
    public var isNote: Bool

    public init(conversation: String, seq: Int, sentAt: Int64, snippet: String, isNote: Bool) {
        self.conversation = conversation
        self.seq = seq
        self.sentAt = sentAt
        self.snippet = snippet
        self.isNote = isNote
    }
}

/// Full-text search of stored messages and notes (never status or assignment events). Ranked by relevance (SQLite's
/// bm25, PostgreSQL's ts_rank), newest first among equals.
public protocol MessageSearch: Sendable {
    func search(_ query: SearchQuery) async throws(StoreError) -> [SearchResult]
}

/// The markers a store puts around matches in its snippets before they become the wire's (`SearchSnippet`):
/// private-use characters, which chat text practically never holds, so brackets in the text stay text.
public enum SearchMarkers {
    public static let start: Character = "\u{E000}"
    public static let end: Character = "\u{E001}"
    public static let startSQL = "\u{E000}"
    public static let endSQL = "\u{E001}"

    public static func wire(_ snippet: String) -> String {
        SearchSnippet.encode(snippet, start: start, end: end)
    }
}

extension SearchMarkers {
    /// A snippet of `text` made without the database's help (PostgreSQL's `ts_headline` would compare words folded
    /// by its own locale, not the index's ICU folding): at most `width` words around the first run of matches, each
    /// word equal to one of `words` (ignoring case and accents) marked, in the wire form.
    public static func snippet(of text: String, words: [String], width: Int = 16) -> String {
        let folded = Set(words.map(fold))
        // Word ranges of the text, split exactly as queries are (`SearchQuery.words`).
        var ranges: [Range<String.Index>] = []
        var start: String.Index?
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            if character.isLetter || character.isNumber {
                if start == nil { start = index }
            } else if let begun = start {
                ranges.append(begun..<index)
                start = nil
            }
            index = text.index(after: index)
        }
        if let begun = start { ranges.append(begun..<text.endIndex) }
        let matches = ranges.indices.filter { folded.contains(fold(text[ranges[$0]])) }
        let first = matches.first ?? 0
        // A few words of context before the first match, the rest after it.
        let lower = max(0, min(first - width / 4, ranges.count - width))
        let upper = min(ranges.count, lower + width)
        guard lower < upper else { return wire(String(text.prefix(200))) }
        let matched = Set(matches)
        var marked = lower > 0 ? "…" : ""
        var cursor = lower > 0 ? ranges[lower].lowerBound : text.startIndex
        for position in lower..<upper {
            let range = ranges[position]
            marked += text[cursor..<range.lowerBound]
            marked += matched.contains(position) ? startSQL + String(text[range]) + endSQL : String(text[range])
            cursor = range.upperBound
        }
        if upper < ranges.count { marked += "…" } else { marked += text[cursor...] }
        return wire(marked)
    }

    private static func fold(_ word: some StringProtocol) -> String {
        word.folding(options: [.caseInsensitive, .diacriticInsensitive], locale: nil)
    }
}
