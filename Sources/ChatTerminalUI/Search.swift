import ChatProtocol

/// `/search WORDS`: the search frame it sends and the results it lists as notices, matches marked for the formatter
/// (`SearchHighlight`). `/switch` then opens any conversation listed.
extension ChatState {
    mutating func searchRequest(_ words: String) -> [ClientFrame] {
        guard !words.isEmpty else {
            addNotice(.error, "usage: /search WORDS")
            return []
        }
        guard isOnline else {
            addNotice(.error, "offline: search again after reconnecting")
            return []
        }
        requestCounter += 1
        let id = "s\(requestCounter)"
        searchRequests[id] = words
        // Customers search their own conversation (the server knows which); agents everything.
        return [.search(SearchRequest(requestId: id, query: words, limit: 20))]
    }

    mutating func showSearchResults(_ results: SearchResults) {
        guard let id = results.requestId, let words = searchRequests.removeValue(forKey: id) else { return }
        let hits = results.results
        guard !hits.isEmpty else {
            addNotice(.info, "search \"\(words)\": nothing found")
            return
        }
        let more = isAgent ? "; /switch NAME opens a conversation" : ""
        addNotice(.info, "search \"\(words)\": \(hits.count) found, best first\(more)")
        for hit in hits {
            searchConversations.insert(hit.conversation)
            let note = hit.isPrivate == true ? " (note)" : ""
            let place = isAgent ? "\(hit.conversation) #\(hit.seq)" : "#\(hit.seq)"
            addNotice(.info, "\(place) \(Self.clock(hit.sentAt))\(note): " + SearchHighlight.mark(hit.snippet))
        }
    }
}

/// Matched words in a notice's text, between two private-use characters that the formatter turns into a highlight
/// (or into brackets without colours). Each takes one column, as the highlight's brackets would.
enum SearchHighlight {
    static let start: Character = "\u{E000}"
    static let end: Character = "\u{E001}"
    /// Black on yellow, bold: stands out from the notice's cyan.
    static let sgr = "1;30;43"

    /// A wire snippet with its matches marked.
    static func mark(_ snippet: String) -> String {
        SearchSnippet.decode(snippet).map { run in
            let text = run.text.filter { $0 != start && $0 != end }
            return run.isMatch ? String(start) + text + String(end) : text
        }.joined()
    }

    /// A notice line with the marks made into styling; `base` is the line's own SGR, restored after each match.
    static func render(_ line: String, style: Style, base: String) -> String {
        guard line.contains(start) || line.contains(end) else { return line }
        var out = ""
        for character in line {
            switch character {
            case start: out += style.colors ? "\u{1B}[0;\(sgr)m" : "["
            case end: out += style.colors ? "\u{1B}[0;\(base)m" : "]"
            default: out.append(character)
            }
        }
        return out
    }
}
