import ChatProtocol
import Testing
@testable import ChatTerminalUI

/// `/search` in the console's state and formatter, without a terminal.
@Suite struct SearchConsoleTests {
    func agent() -> ChatState {
        var state = ChatState(user: "sam")
        _ = state.apply(.welcome(Welcome(protocolVersion: 1, user: "sam", role: .agent, limits: ChatStateTests.limits, serverTime: 0)))
        _ = state.apply(.roster([RosterEntry(customer: "alice", online: true, lastSeq: 3, lastMessage: nil, unread: 0, readSeq: 3)]))
        _ = state.apply(.synced(Synced(lastSeqs: [:])))
        return state
    }

    @Test func searchSendsAFrameListsTheResultsAndSwitchOpensAListedConversation() throws {
        var state = agent()
        let frames = state.submit("/search parcel refund").frames
        guard case .search(let request) = try #require(frames.first) else {
            Issue.record("no search frame: \(frames)")
            return
        }
        #expect(request.query == "parcel refund" && request.conversation == nil)
        _ = state.apply(.searchResults(SearchResults(requestId: request.requestId, results: [
            SearchHit(conversation: "bob", seq: 7, sentAt: 0, snippet: "my [parcel] \\[x\\]", isPrivate: nil),
            SearchHit(conversation: "alice", seq: 2, sentAt: 0, snippet: "[refund] please", isPrivate: true),
        ])))
        let texts = state.notices.map(\.text)
        #expect(texts.contains { $0.hasPrefix("search \"parcel refund\": 2 found") })
        #expect(texts.contains { $0.hasPrefix("bob #7 ") && $0.hasSuffix(": my \u{E000}parcel\u{E001} [x]") })
        #expect(texts.contains { $0.contains("alice #2") && $0.contains("(note)") })
        // bob is not in the roster, but the search listed him: /switch opens his conversation.
        let opened = state.submit("/switch bob")
        #expect(state.current == "bob")
        #expect(opened.frames.contains { if case .history(let page) = $0 { page.conversation == "bob" } else { false } })
        // An answer nobody asked for (or a second copy) lists nothing.
        let before = state.notices.count
        _ = state.apply(.searchResults(SearchResults(requestId: request.requestId, results: [])))
        #expect(state.notices.count == before)
        _ = state.submit("/search")
        #expect(state.notices.last?.text == "usage: /search WORDS")
    }

    @Test func theFormatterHighlightsMatchesOrBracketsThemWithoutColours() {
        let notice = Notice(kind: .info, text: "#3 10:00: my \u{E000}parcel\u{E001} is late", conversation: nil, time: 0, serial: 1)
        let plain = MessageFormatter(style: Style(colors: false), columns: 80, user: "alice")
        #expect(plain.lines(for: .notice(notice)).first?.text.contains("my [parcel] is late") == true)
        let coloured = MessageFormatter(style: Style(colors: true), columns: 80, user: "alice")
        let line = coloured.lines(for: .notice(notice)).first?.text ?? ""
        #expect(line.contains("my \u{1B}[0;1;30;43mparcel\u{1B}[0;36m is late"))
    }
}
