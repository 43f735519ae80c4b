import ChatProtocol
import Synchronization
import Testing
@testable import ChatTerminalUI

@Suite struct ChatStateTests {
    static let limits = Limits(maxTextBytes: 100, messagesPerSecond: 50, burst: 100, historyPageMax: 200)

    func customer() -> ChatState {
        var state = ChatState(user: "alice")
        let counter = Counter()
        state.makeId = { counter.next() }
        _ = state.apply(.welcome(Welcome(protocolVersion: 1, user: "alice", role: .customer, limits: Self.limits, serverTime: 0)))
        _ = state.apply(.synced(Synced(lastSeqs: [:])))
        return state
    }

    func message(_ seq: Int, from sender: String = "sam", role: Role = .agent, clientId: String? = nil,
                 conversation: String = "alice") -> ChatMessage {
        ChatMessage(id: Int64(seq), conversation: conversation, seq: seq, sender: sender, senderRole: role,
                    clientId: clientId ?? "x\(seq)", text: "m\(seq)", sentAt: Int64(seq), broadcast: false)
    }

    func sentIds(_ frames: [ClientFrame]) -> [String] {
        frames.compactMap { if case .send(let send) = $0 { send.clientId } else { nil } }
    }

    func deliveries(_ state: ChatState) -> [String: Delivery?] {
        var result: [String: Delivery?] = [:]
        for item in state.timeline(for: "alice") {
            switch item {
            case .message(let m, let d): result[m.text] = d
            case .pending(let p): result[p.text] = .sending
            case .notice: break
            }
        }
        return result
    }

    /// Under load the console can open before the server has said who the customers are.
    @Test func aSwitchTypedBeforeTheRosterArrivedOpensTheConversationWhenItDoes() {
        var state = ChatState(user: "sam")
        #expect(state.command("/switch alice").frames.isEmpty)
        _ = state.apply(.welcome(Welcome(protocolVersion: 1, user: "sam", role: .agent, limits: Self.limits, serverTime: 0)))
        #expect(state.command("/switch bob").frames.isEmpty)
        #expect(state.current == nil && !state.notices.contains { $0.kind == .error })
        let entry = RosterEntry(customer: "alice", online: true, lastSeq: 3, lastMessage: nil, unread: 1, readSeq: 2)
        #expect(state.apply(.roster([entry])).frames.isEmpty, "not online before the backlog is in")
        let outcome = state.apply(.synced(Synced(lastSeqs: [:])))
        // alice opens (her history is asked for); bob is no customer, which is said now.
        #expect(state.current == "alice")
        #expect(outcome.frames.contains { if case .history(let request) = $0 { request.conversation == "alice" } else { false } })
        #expect(state.notices.contains { $0.kind == .error && $0.text.contains("no customer named bob") })

        var customer = ChatState(user: "alice")
        _ = customer.command("/who")
        _ = customer.apply(.welcome(Welcome(protocolVersion: 1, user: "alice", role: .customer, limits: Self.limits, serverTime: 0)))
        #expect(customer.notices.contains { $0.kind == .error && $0.text.contains("unknown command /who") })
    }

    @Test func sendingThenStoredByAckThenReadByReceipt() {
        var state = customer()
        let outcome = state.submit("hello")
        #expect(sentIds(outcome.frames) == ["id1"])
        #expect(deliveries(state)["hello"] == .sending)
        _ = state.apply(.ack(Ack(clientId: "id1", id: 10, conversation: "alice", seq: 1, sentAt: 5, duplicate: false)))
        #expect(state.pending.isEmpty)
        #expect(deliveries(state)["hello"] == .stored)
        // A receipt from another customer connection does not count; an agent's does.
        _ = state.apply(.read(ReadReceipt(conversation: "alice", reader: "alice", readerRole: .customer, seq: 1)))
        #expect(deliveries(state)["hello"] == .stored)
        _ = state.apply(.read(ReadReceipt(conversation: "alice", reader: "sam", readerRole: .agent, seq: 1)))
        #expect(deliveries(state)["hello"] == .read)
    }

    @Test func offlineMessagesAreQueuedAndResentWithTheSameClientIdsAfterReconnect() {
        var state = customer()
        _ = state.submit("one")  // sent, ack lost with the connection
        state.connectionLost(reason: "gone", retryInSeconds: 1)
        let offline = state.submit("two")
        #expect(offline.frames.isEmpty, "nothing is sent while offline")
        #expect(state.pending.map(\.clientId) == ["id1", "id2"])

        // Reconnect: resume from what is known, resend both in order with their original ids.
        _ = state.apply(.welcome(Welcome(protocolVersion: 1, user: "alice", role: .customer, limits: Self.limits, serverTime: 0)))
        let synced = state.apply(.synced(Synced(lastSeqs: [:])))
        #expect(sentIds(synced.frames) == ["id1", "id2"])
        // The server had stored "one": a duplicate ack; "two" is new.
        _ = state.apply(.ack(Ack(clientId: "id1", id: 1, conversation: "alice", seq: 1, sentAt: 1, duplicate: true)))
        _ = state.apply(.ack(Ack(clientId: "id2", id: 2, conversation: "alice", seq: 2, sentAt: 2, duplicate: false)))
        #expect(state.pending.isEmpty)
        #expect(state.conversations["alice"]?.messages.count == 2)
        let texts = state.timeline(for: "alice").compactMap { if case .message(let m, _) = $0 { m.text } else { nil } }
        #expect(texts == ["one", "two"])
    }

    @Test func aReplayedOwnMessageSettlesThePendingOneAndNothingShowsTwice() {
        var state = customer()
        _ = state.submit("one")
        state.connectionLost(reason: "gone", retryInSeconds: 1)
        _ = state.apply(.welcome(Welcome(protocolVersion: 1, user: "alice", role: .customer, limits: Self.limits, serverTime: 0)))
        _ = state.apply(.message(ChatMessage(id: 1, conversation: "alice", seq: 1, sender: "alice", senderRole: .customer,
                                             clientId: "id1", text: "one", sentAt: 1, broadcast: false)))
        let synced = state.apply(.synced(Synced(lastSeqs: ["alice": 1])))
        #expect(sentIds(synced.frames).isEmpty)
        _ = state.apply(.message(ChatMessage(id: 1, conversation: "alice", seq: 1, sender: "alice", senderRole: .customer,
                                             clientId: "id1", text: "one", sentAt: 1, broadcast: false)))
        #expect(state.timeline(for: "alice").filter { if case .message = $0 { true } else { false } }.count == 1)
    }

    @Test func helloResumesFromTheContiguousSequence() {
        var state = customer()
        #expect(state.hello().lastSeq == nil, "before any page: no backlog, history instead")
        _ = state.apply(.history(HistoryPage(requestId: nil, conversation: "alice", messages: [message(1), message(2)],
                                             hasMore: false)))
        #expect(state.hello().lastSeq == 2)
        _ = state.apply(.message(message(4)))
        #expect(state.hello().lastSeq == 2, "a gap at 3: resume from 2 so the server resends 3")
        _ = state.apply(.message(message(3)))
        #expect(state.hello().lastSeq == 4)
    }

    @Test func liveMessageInOpenConversationIsMarkedRead() {
        var state = customer()
        _ = state.apply(.history(HistoryPage(requestId: nil, conversation: "alice", messages: [], hasMore: false)))
        let outcome = state.apply(.message(message(1)))
        #expect(outcome.frames == [.read(ReadMarker(conversation: nil, seq: 1))])
        #expect(state.apply(.message(message(1))).frames.isEmpty, "a duplicate changes nothing")
    }

    @Test func rejectedMessageIsDroppedWithAnErrorButRateLimitedStaysPending() {
        var state = customer()
        _ = state.submit("a")
        _ = state.submit("b")
        _ = state.apply(.error(ErrorFrame(code: .rateLimited, message: "slow down", ref: "id1", retryAfterMs: 100)))
        _ = state.apply(.error(ErrorFrame(code: .invalidFrame, message: "bad", ref: "id2")))
        #expect(state.pending.map(\.clientId) == ["id1"])
        #expect(state.notices.contains { $0.kind == .error && $0.text.contains("bad") })
    }

    @Test func rateLimitedMessagesAreResentAfterTheServersHint() {
        var state = customer()
        _ = state.submit("a")
        _ = state.submit("b")
        let limited = state.apply(.error(ErrorFrame(code: .rateLimited, message: "slow down", ref: "id2", retryAfterMs: 250)))
        #expect(limited.retryAfter == .milliseconds(250))
        #expect(state.apply(.error(ErrorFrame(code: .storeFailed, message: "disk", ref: "id1"))).retryAfter == .seconds(1))
        // The retry resends both pending messages with their own client ids, so the server can drop copies.
        let resent = state.resendFrames()
        #expect(resent.count == 2)
        #expect(resent.compactMap { if case .send(let send) = $0 { send.clientId } else { nil } } == ["id1", "id2"])
        let other = state.apply(.error(ErrorFrame(code: .invalidFrame, message: "bad", ref: "id1")))
        #expect(other.retryAfter == nil, "a refusal that will not change is not retried")
    }

    @Test func aBurstOfRateLimitRefusalsShowsOneNotice() {
        let clock = Clock(1_000_000)
        var state = customer()
        state.now = { clock.now }
        for text in ["a", "b", "c"] { _ = state.submit(text) }
        let before = state.notices.count
        for id in ["id1", "id2", "id3"] {
            _ = state.apply(.error(ErrorFrame(code: .rateLimited, message: "slow down", ref: id, retryAfterMs: 250)))
        }
        #expect(state.notices.count == before + 1)
        clock.now += ChatState.rateNoticeQuietMs + 1
        _ = state.apply(.error(ErrorFrame(code: .rateLimited, message: "slow down", ref: "id1", retryAfterMs: 250)))
        #expect(state.notices.count == before + 2, "a later episode is news again")
        #expect(state.pending.count == 3)
    }

    @Test func aRefusedTypingFrameIsSilentButPendingMessagesStillGoAgain() {
        var state = customer()
        let notices = state.notices.count
        let idle = state.apply(.error(ErrorFrame(code: .rateLimited, message: "slow down", retryAfterMs: 300)))
        #expect(idle.retryAfter == nil, "nothing pending, nothing to resend")
        _ = state.submit("a")
        let busy = state.apply(.error(ErrorFrame(code: .rateLimited, message: "slow down", retryAfterMs: 300)))
        #expect(busy.retryAfter == .milliseconds(300))
        #expect(state.notices.count == notices, "a dropped typing indicator is not news to the user")
        #expect(state.pending.map(\.clientId) == ["id1"])
    }

    @Test func typingIsSentAtMostEveryFewSecondsAndShownUntilItLapses() {
        let clock = Clock(1_000_000)
        var state = customer()
        state.now = { clock.now }
        #expect(state.inputChanged("h").frames == [.typing(Typing(conversation: nil, active: true))])
        #expect(state.inputChanged("he").frames.isEmpty, "keystrokes within the interval send nothing")
        #expect(state.inputChanged("/his").frames == [.typing(Typing(conversation: nil, active: false))], "a command is not typing")
        #expect(state.inputChanged("").frames.isEmpty, "stopped once only")
        _ = state.inputChanged("x")
        clock.now += 3_000
        #expect(state.inputChanged("xy").frames.count == 1, "repeated after the interval while typing goes on")

        // Shown for the open conversation, cleared by the typist's message or after a quiet spell; own echoes ignored.
        _ = state.apply(.typing(TypingNotice(conversation: "alice", user: "sam", role: .agent, active: true)))
        _ = state.apply(.typing(TypingNotice(conversation: "alice", user: "alice", role: .customer, active: true)))
        #expect(state.typingText() == "sam is typing…")
        _ = state.apply(.typing(TypingNotice(conversation: "alice", user: "kim", role: .agent, active: true)))
        #expect(state.typingText() == "kim, sam are typing…")
        _ = state.apply(.message(ChatMessage(id: 9, conversation: "alice", seq: 1, sender: "sam", senderRole: .agent,
                                             clientId: "s1", text: "hello", sentAt: clock.now, broadcast: false)))
        #expect(state.typingText() == "kim is typing…")
        clock.now += 6_001
        #expect(state.typingText() == nil)
        _ = state.apply(.typing(TypingNotice(conversation: "alice", user: "kim", role: .agent, active: true)))
        _ = state.apply(.typing(TypingNotice(conversation: "alice", user: "kim", role: .agent, active: false)))
        #expect(state.typingText() == nil)
    }

    @Test func tooLongTextIsRefusedLocally() {
        var state = customer()
        let outcome = state.submit(String(repeating: "x", count: 101))
        #expect(outcome.frames.isEmpty)
        #expect(state.pending.isEmpty)
        #expect(state.notices.last?.text.contains("over the server's limit") == true)
    }

    // MARK: Agents

    func agent() -> ChatState {
        var state = ChatState(user: "sam")
        let counter = Counter()
        state.makeId = { counter.next() }
        _ = state.apply(.welcome(Welcome(protocolVersion: 1, user: "sam", role: .agent, limits: Self.limits, serverTime: 0)))
        _ = state.apply(.roster([
            RosterEntry(customer: "alice", online: true, lastSeq: 2, lastMessage: MessagePreview(sender: "alice", text: "hi", sentAt: 200, seq: 2), unread: 2, readSeq: 0),
            RosterEntry(customer: "bob", online: false, lastSeq: 1, lastMessage: MessagePreview(sender: "bob", text: "yo", sentAt: 100, seq: 1), unread: 1, readSeq: 0),
            RosterEntry(customer: "carol", online: true, lastSeq: 0, lastMessage: nil, unread: 0, readSeq: 0),
        ]))
        _ = state.apply(.synced(Synced(lastSeqs: [:])))
        return state
    }

    /// Code points of WGL4 (Windows Glyph List 4) beyond Latin-1 that the console may use: what every common
    /// monospace font covers.
    static let wgl4Symbols: Set<UInt32> = [
        0x2022, 0x2026, 0x203C, 0x2190, 0x2191, 0x2192, 0x2193, 0x2194, 0x2195, 0x2500, 0x2502, 0x250C, 0x2510,
        0x2514, 0x2518, 0x251C, 0x2524, 0x252C, 0x2534, 0x253C, 0x2580, 0x2584, 0x2588, 0x258C, 0x2590, 0x2591,
        0x2592, 0x2593, 0x25A0, 0x25A1, 0x25AA, 0x25AB, 0x25AC, 0x25B2, 0x25BA, 0x25BC, 0x25C4, 0x25CA, 0x25CB,
        0x25CF, 0x25D8, 0x25D9, 0x25E6,
    ]

    @Test func theStatusLineUsesOnlyGlyphsEveryMonospaceFontHas() {
        func check(_ text: String, _ what: String) {
            let foreign = text.unicodeScalars.filter { $0.value > 0xFF && !Self.wgl4Symbols.contains($0.value) }
            #expect(foreign.isEmpty, "\(what): \(foreign.map { String(format: "U+%04X", $0.value) }) in \(text)")
        }
        for glyph in Glyphs.all { check(glyph, "glyph") }
        var state = agent()
        _ = state.open("alice")
        let statuses: [ConnectionStatus] = [.connecting(attempt: 1), .connecting(attempt: 3), .syncing, .online,
                                            .offline(reason: "cannot reach the server", retryInSeconds: 4),
                                            .failed(reason: "token revoked")]
        for status in statuses {
            state.status = status
            let line = StatusLine(state: state, attention: ["bob"], progress: "\(Glyphs.upload) a.png \(Glyphs.barFull)",
                                  scrollBack: 3).text(columns: 300, style: Style(colors: true))
            check(line, "\(status)")
            #expect(line.contains("alice") && line.contains("bob"), "the roster is in the line: \(line)")
        }
        var customerState = customer()
        customerState.status = .online
        check(StatusLine(state: customerState, attention: [], progress: nil, scrollBack: 0).text(columns: 100, style: Style(colors: false)),
              "customer")
    }

    @Test func agentRosterUnreadNextAndSwitch() {
        var state = agent()
        #expect(state.totalUnread == 3)
        #expect(state.nextUnread() == "bob", "bob's unread message is the oldest")
        let outcome = state.submit("/next")
        #expect(state.current == "bob")
        #expect(outcome.frames.contains { if case .history(let h) = $0 { h.conversation == "bob" } else { false } })
        // The history page arrives: the conversation is marked read up to its newest customer message.
        let page = state.apply(.history(HistoryPage(requestId: "h1", conversation: "bob",
                                                    messages: [message(1, from: "bob", role: .customer, conversation: "bob")],
                                                    hasMore: false)))
        #expect(page.frames == [.read(ReadMarker(conversation: "bob", seq: 1))])
        #expect(state.hello().lastSeqs == ["bob": 1])
    }

    @Test func agentGetsABellForAnotherConversationAndSendsToTheOpenOne() {
        var state = agent()
        _ = state.submit("/switch carol")
        let bell = state.apply(.message(message(3, from: "alice", role: .customer)))
        #expect(bell.bell)
        #expect(state.roster["alice"]?.unread == 3)
        let sent = state.submit("hello carol")
        guard case .send(let send)? = sent.frames.first else { Issue.record("no send"); return }
        #expect(send.conversation == "carol")
        #expect(!state.submit("/switch nobody").frames.contains { if case .send = $0 { true } else { false } })
        #expect(state.notices.last?.text.contains("no customer named nobody") == true)
    }

    @Test func tabCompletesCustomerNamesAndCommands() {
        let state = agent()
        #expect(state.completions(for: "a", isFirstWord: false, line: "/switch a") == ["alice"])
        #expect(state.completions(for: "/sw", isFirstWord: true, line: "/sw") == ["/switch"])
        #expect(state.completions(for: "", isFirstWord: false, line: "/switch ") == ["alice", "bob", "carol"])
    }

    @Test func broadcastIsPendingUntilItsAck() {
        var state = agent()
        let outcome = state.submit("/broadcast maintenance at 22:00")
        #expect(outcome.frames == [.broadcast(Broadcast(clientId: "id1", text: "maintenance at 22:00"))])
        _ = state.apply(.broadcastAck(BroadcastAck(clientId: "id1", conversations: 3, sentAt: 1, duplicate: false)))
        #expect(state.pending.isEmpty)
        #expect(state.notices.last?.text.contains("stored in 3 conversations") == true)
    }

    @Test func backoffGrowsIsCappedAndJittered() {
        var backoff = Backoff(base: 0.5, cap: 8)
        let first = backoff.next(random: 0)
        let second = backoff.next(random: 1)
        #expect(first == 0.25)
        #expect(second == 1.0)
        for _ in 0..<20 { _ = backoff.next(random: 1) }
        #expect(backoff.next(random: 1) == 8)
        #expect(backoff.next(random: 0) == 4)
        backoff.reset()
        #expect(backoff.next(random: 1) == 0.5)
    }
}

/// Deterministic client ids for tests.
final class Counter: @unchecked Sendable {
    private var value = 0
    private let lock = NSLock()
    func next() -> String {
        lock.lock(); defer { lock.unlock() }
        value += 1
        return "id\(value)"
    }
}

import Foundation

/// A settable clock for `ChatState.now`.
private final class Clock: Sendable {
    private let value: Mutex<Int64>
    init(_ now: Int64) { value = Mutex(now) }
    var now: Int64 {
        get { value.withLock { $0 } }
        set { value.withLock { $0 = newValue } }
    }
}
