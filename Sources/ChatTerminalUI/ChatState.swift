import ChatProtocol
import Foundation

/// The chat logic without any I/O: conversations, pending messages, roster, connection status. The terminal layer
/// feeds it server frames and typed lines and sends the frames it returns.
public struct ChatState: Sendable {
    public let user: String
    public internal(set) var role: Role?
    public internal(set) var limits: Limits?
    public var status: ConnectionStatus = .connecting(attempt: 1)
    public internal(set) var conversations: [String: Conversation] = [:]
    public internal(set) var pending: [PendingMessage] = []
    public internal(set) var roster: [String: RosterEntry] = [:]
    /// Whether the server has sent the roster since start-up (agents).
    var rosterLoaded = false
    /// Roster commands typed before the roster arrived and the backlog was in, run then: someone who types
    /// `/switch alice` the moment the console opens means alice, not "no such customer".
    var waitingForRoster: [String] = []
    /// The team's canned replies (agents' `/canned NAME`), as the server last sent them.
    public internal(set) var cannedReplies: [CannedReply] = []
    /// Which conversations the roster shows (agents' `/view`).
    public internal(set) var rosterView = RosterView.all
    /// The open conversation: always the user's own for customers; the agent's choice otherwise.
    public internal(set) var current: String?
    public internal(set) var agentsOnline: Int?
    public internal(set) var notices: [Notice] = []
    /// Attachments numbered in the order they were first seen, for `/save N`.
    public internal(set) var attachments: [Int: Attachment] = [:]
    var attachmentNumbers: [String: Int] = [:]
    /// When the first unread message of a conversation arrived (agents' `/next`).
    var firstUnreadAt: [String: Int64] = [:]
    var historyRequests: [String: (conversation: String, older: Bool)] = [:]
    /// Searches sent and not answered yet: request id to the words, for the results' heading.
    var searchRequests: [String: String] = [:]
    /// Conversations listed by a search, which `/switch` opens even when the roster does not show them.
    var searchConversations: Set<String> = []
    /// Who is typing where, and until when (epoch ms): live only, like the frames.
    var typingUntil: [String: [String: Int64]] = [:]
    /// When this client last told the server it is typing, so keystrokes send at most one frame per interval.
    var typingSentAt: Int64?
    /// When the last rate-limit refusal came (epoch ms); repeats within `rateNoticeQuietMs` add no notice.
    var rateNoticeAt: Int64?
    static let rateNoticeQuietMs: Int64 = 10_000
    var serial = 0
    var requestCounter = 0
    var clockOffset: Int64 = 0
    /// Makes client ids; injectable for tests.
    public var makeId: @Sendable () -> String = { UUID().uuidString.lowercased() }
    public var now: @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }

    public init(user: String) {
        self.user = user
    }

    public var isOnline: Bool { status == .online }
    public var isAgent: Bool { role == .agent }

    // MARK: Connecting

    /// The `hello` for the next connection: resumes every conversation that was loaded.
    public func hello() -> Hello {
        if role == .agent {
            var seqs: [String: Int] = [:]
            for (name, conversation) in conversations { if let seq = conversation.syncedSeq { seqs[name] = seq } }
            return Hello(user: user, lastSeqs: seqs.isEmpty ? nil : seqs)
        }
        return Hello(user: user, lastSeq: conversations[user]?.syncedSeq)
    }

    public mutating func connectionLost(reason: String, retryInSeconds: Int) {
        status = .offline(reason: reason, retryInSeconds: retryInSeconds)
        historyRequests.removeAll()
        searchRequests.removeAll()
    }

    public mutating func connectionFailed(reason: String) {
        status = .failed(reason: reason)
        addNotice(.error, "connection refused: \(reason)")
    }

    // MARK: Typing

    /// A line typed by the user: a message or a command.
    public mutating func submit(_ line: String) -> Outcome {
        typingSentAt = nil  // a sent message ends the indicator on the other side
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { return Outcome() }
        if trimmed.hasPrefix("/") && !trimmed.hasPrefix("//") { return command(trimmed) }
        let text = trimmed.hasPrefix("//") ? String(line.drop(while: { $0 == " " }).dropFirst()) : line
        return sendMessage(text)
    }

    public mutating func sendMessage(_ text: String, attachments: [AttachmentReference]? = nil,
                                     attachmentInfo: [Attachment]? = nil) -> Outcome {
        guard let conversation = current ?? (role == .customer ? user : nil) else {
            addNotice(.error, "no conversation open: /switch NAME first (/who lists customers)")
            return Outcome()
        }
        if let limit = limits?.maxTextBytes, text.utf8.count > limit {
            addNotice(.error, "message of \(text.utf8.count) bytes is over the server's limit of \(limit) bytes; nothing sent")
            return Outcome()
        }
        let message = PendingMessage(clientId: makeId(), text: text, conversation: conversation, broadcast: false,
                                     attachments: attachments, createdAt: now() + clockOffset,
                                     attachmentInfo: attachmentInfo)
        pending.append(message)
        var outcome = Outcome()
        if isOnline { outcome.frames.append(frame(for: message)) }
        return outcome
    }

    func frame(for message: PendingMessage) -> ClientFrame {
        if message.broadcast { return .broadcast(Broadcast(clientId: message.clientId, text: message.text)) }
        if message.note, let conversation = message.conversation {
            return .note(Note(clientId: message.clientId, conversation: conversation, text: message.text, attachments: message.attachments))
        }
        let conversation = role == .customer ? nil : message.conversation
        return .send(Send(clientId: message.clientId, text: message.text, conversation: conversation,
                          attachments: message.attachments))
    }

    // MARK: Server frames

    /// The roster commands typed too early, once the roster is known and the connection is online.
    mutating func runWaitingCommands() -> Outcome {
        var outcome = Outcome()
        guard rosterLoaded, isOnline else { return outcome }
        let waiting = waitingForRoster
        waitingForRoster = []
        for line in waiting { outcome.merge(command(line)) }
        return outcome
    }

    public mutating func apply(_ frame: ServerFrame) -> Outcome {
        var outcome = Outcome()
        switch frame {
        case .welcome(let welcome):
            role = welcome.role
            limits = welcome.limits
            clockOffset = welcome.serverTime - now()
            status = .syncing
            if welcome.role == .customer {
                // Nothing will come for customers: what waited is answered now ("unknown command").
                for line in waitingForRoster { outcome.merge(command(line)) }
                waitingForRoster = []
                current = welcome.user
                if conversations[welcome.user] == nil { conversations[welcome.user] = Conversation(name: welcome.user) }
            }
        case .synced(let synced):
            status = .online
            for (name, seq) in synced.lastSeqs {
                if conversations[name] == nil { conversations[name] = Conversation(name: name) }
                if let known = conversations[name]?.syncedSeq, known < seq { conversations[name]?.syncedSeq = seq }
            }
            // What was typed while offline (and anything not acknowledged) goes out now, in order.
            outcome.frames += pending.map(frame(for:))
            if let current {
                if conversations[current]?.syncedSeq == nil {
                    outcome.frames += historyRequest(current, before: nil, limit: 50)
                } else {
                    outcome.frames += markRead(current)
                }
            }
            outcome.merge(runWaitingCommands())
        case .message(let message):
            typingUntil[message.conversation]?[message.sender] = nil
            outcome.merge(receive(message, live: true))
        case .ack(let ack):
            if let index = pending.firstIndex(where: { $0.clientId == ack.clientId }) {
                let sent = pending.remove(at: index)
                let message = ChatMessage(id: ack.id, conversation: ack.conversation, seq: ack.seq, sender: user,
                                          senderRole: role ?? .customer, clientId: ack.clientId, text: sent.text,
                                          sentAt: ack.sentAt, broadcast: false, attachments: sent.attachmentInfo,
                                          isPrivate: sent.note ? true : nil)
                if conversations[ack.conversation]?.messages[ack.seq] == nil {
                    insert(message, outcome: &outcome)
                }
            }
        case .broadcastAck(let ack):
            if let index = pending.firstIndex(where: { $0.clientId == ack.clientId }) {
                let sent = pending.remove(at: index)
                addNotice(.info, "broadcast \"\(sent.text.prefix(60))\" stored in \(ack.conversations) conversations")
            }
        case .history(let page):
            let requested = page.requestId.flatMap { historyRequests.removeValue(forKey: $0) }
            let name = requested?.conversation ?? page.conversation
            if conversations[name] == nil { conversations[name] = Conversation(name: name) }
            for message in page.messages { insert(message, outcome: &outcome) }
            if let first = page.messages.first, let oldest = conversations[name]?.oldestLoadedSeq, first.seq <= oldest {
                conversations[name]?.hasMoreBefore = page.hasMore
            }
            if conversations[name]?.syncedSeq == nil {
                // The newest page: from here on everything is known.
                let top = page.messages.last?.seq ?? roster[name]?.lastSeq ?? 0
                conversations[name]?.syncedSeq = top
                conversations[name]?.advanceSynced()
            }
            if requested?.older == true {
                outcome.showOlder = !page.messages.isEmpty
                addNotice(.info, page.messages.isEmpty ? "no older messages"
                          : "loaded \(page.messages.count) older messages" + (page.hasMore ? "" : " (the beginning)"),
                          conversation: name)
            }
            if name == current { outcome.frames += markRead(name) }
        case .roster(let entries):
            roster = Dictionary(entries.map { ($0.customer, $0) }, uniquingKeysWith: { $1 })
            rosterLoaded = true
            outcome.merge(runWaitingCommands())
        case .rosterUpdate(let entries):
            for entry in entries {
                let before = roster[entry.customer]
                roster[entry.customer] = entry
                if entry.unread > 0, (before?.unread ?? 0) == 0, firstUnreadAt[entry.customer] == nil {
                    firstUnreadAt[entry.customer] = entry.lastMessage?.sentAt ?? now()
                }
            }
        case .read(let receipt):
            let fromOtherSide = role == .customer ? receipt.readerRole == .agent : receipt.readerRole == .customer
            if fromOtherSide {
                if conversations[receipt.conversation] == nil {
                    conversations[receipt.conversation] = Conversation(name: receipt.conversation)
                }
                if let seen = conversations[receipt.conversation]?.otherReadSeq, receipt.seq > seen {
                    conversations[receipt.conversation]?.otherReadSeq = receipt.seq
                }
            }
        case .presence(let presence):
            agentsOnline = presence.agentsOnline
        case .error(let error):
            outcome.merge(handle(error))
        case .typing(let notice):
            noteTyping(notice)
        case .searchResults(let results):
            showSearchResults(results)
        case .conversationUpdated(let update):
            conversationUpdated(update)
        case .cannedReplies(let list):
            cannedReplies = list.replies
        case .pong, .uploadReady, .uploadProgress, .uploadDone:
            break
        }
        return outcome
    }

    private mutating func receive(_ message: ChatMessage, live: Bool) -> Outcome {
        var outcome = Outcome()
        // A replayed copy of an own message whose ack was lost: it is stored, so it is no longer pending.
        if message.sender == user, let index = pending.firstIndex(where: { $0.clientId == message.clientId }) {
            pending.remove(at: index)
        }
        let isNew = conversations[message.conversation]?.messages[message.seq] == nil
        insert(message, outcome: &outcome)
        guard isNew, message.sender != user else { return outcome }
        if message.conversation == current {
            outcome.frames += markRead(message.conversation)
        } else if role == .agent {
            outcome.bell = true
            if firstUnreadAt[message.conversation] == nil { firstUnreadAt[message.conversation] = message.sentAt }
            if var entry = roster[message.conversation] {
                // Shown at once; the server's rosterUpdate follows with the authoritative count.
                if message.seq > entry.lastSeq, message.senderRole == .customer {
                    entry.unread += 1
                    entry.lastSeq = message.seq
                    entry.lastMessage = MessagePreview(sender: message.sender, text: String(message.text.prefix(120)),
                                                       sentAt: message.sentAt, seq: message.seq)
                    roster[message.conversation] = entry
                }
            } else if message.senderRole == .customer {
                roster[message.conversation] = RosterEntry(
                    customer: message.conversation, online: true, lastSeq: message.seq,
                    lastMessage: MessagePreview(sender: message.sender, text: String(message.text.prefix(120)),
                                                sentAt: message.sentAt, seq: message.seq),
                    unread: 1, readSeq: 0)
            }
        }
        return outcome
    }

    private mutating func insert(_ message: ChatMessage, outcome: inout Outcome) {
        if conversations[message.conversation] == nil {
            conversations[message.conversation] = Conversation(name: message.conversation)
        }
        let isNew = conversations[message.conversation]?.messages[message.seq] == nil
        conversations[message.conversation]?.insert(message)
        guard isNew, let list = message.attachments else { return }
        for (index, attachment) in list.enumerated() {
            let key = "\(message.id)/\(index)"
            guard attachmentNumbers[key] == nil else { continue }
            let number = attachments.count + 1
            attachmentNumbers[key] = number
            attachments[number] = attachment
            outcome.newAttachments.append(number)
        }
    }

    /// The number `/save N` uses for an attachment of a message.
    public func attachmentNumber(messageId: Int64, index: Int) -> Int? {
        attachmentNumbers["\(messageId)/\(index)"]
    }

    private mutating func handle(_ error: ErrorFrame) -> Outcome {
        var outcome = Outcome()
        if let ref = error.ref, let index = pending.firstIndex(where: { $0.clientId == ref }) {
            switch error.code {
            case .rateLimited, .storeFailed, .shuttingDown:
                // Kept pending: resent with the same clientId after `retryAfter` (the server's hint, 1 s without
                // one), or after the next reconnect, whichever comes first; the server drops a second copy.
                // One notice per episode: a fast typist refused ten times reads it once, not ten times.
                let time = now()
                let quiet = rateNoticeAt.map { time - $0 <= Self.rateNoticeQuietMs } ?? false
                if error.code != .rateLimited || !quiet {
                    addNotice(.error, "\(error.message); will resend")
                }
                if error.code == .rateLimited { rateNoticeAt = time }
                outcome.frames = []
                outcome.retryAfter = Self.retryDelay(error)
            default:
                let dropped = pending.remove(at: index)
                addNotice(.error, "not sent (\(error.code.rawValue)): \(error.message): \"\(dropped.text.prefix(60))\"")
            }
            return outcome
        }
        if error.code == .rateLimited {
            // A frame of no message (typing, read marker) was refused; nothing to tell the user. Pending messages
            // go again after the hint in case the refused frame was one of theirs after all.
            if !pending.isEmpty { outcome.retryAfter = Self.retryDelay(error) }
            return outcome
        }
        addNotice(.error, "server: \(error.code.rawValue): \(error.message)")
        return outcome
    }

    /// The server's hint, kept between 100 ms and a minute; 1 s without one.
    static func retryDelay(_ error: ErrorFrame) -> Duration {
        .milliseconds(min(60_000, max(100, error.retryAfterMs ?? 1000)))
    }

    /// Frames for messages still pending (used for a timed retry after `rate_limited`).
    public func resendFrames() -> [ClientFrame] {
        isOnline ? pending.map(frame(for:)) : []
    }

    // MARK: Notices

    public mutating func addNotice(_ kind: Notice.Kind, _ text: String, conversation: String? = nil) {
        serial += 1
        notices.append(Notice(kind: kind, text: text, conversation: conversation, time: now() + clockOffset, serial: serial))
        if notices.count > 500 { notices.removeFirst(notices.count - 500) }
    }

    // MARK: Views

    public func delivery(of message: ChatMessage) -> Delivery? {
        guard message.sender == user, message.event == nil else { return nil }
        // The customer never sees a note: stored is all there is to say about it.
        if message.isPrivate == true { return .stored }
        let read = conversations[message.conversation]?.otherReadSeq ?? 0
        return message.seq <= read ? .read : .stored
    }

    /// What to show for a conversation (nil: global notices only), oldest first.
    public func timeline(for name: String?) -> [TimelineItem] {
        var items: [(key: (Int64, Int, Int), item: TimelineItem)] = []
        if let name, let conversation = conversations[name] {
            for message in conversation.messages.values {
                items.append(((message.sentAt, 0, message.seq), .message(message, delivery: delivery(of: message))))
            }
        }
        for notice in notices where notice.conversation == nil || notice.conversation == name {
            items.append(((notice.time, 1, notice.serial), .notice(notice)))
        }
        items.sort { $0.key < $1.key }
        var result = items.map(\.item)
        for message in pending where message.broadcast || message.conversation == name {
            result.append(.pending(message))
        }
        return result
    }

    /// Customers for the roster: unread first, then by last activity.
    public func rosterOrder() -> [RosterEntry] {
        roster.values.filter(isShown).sorted {
            if ($0.unread > 0) != ($1.unread > 0) { return $0.unread > 0 }
            let a = $0.lastMessage?.sentAt ?? 0, b = $1.lastMessage?.sentAt ?? 0
            if a != b { return a > b }
            return $0.customer < $1.customer
        }
    }

    public var totalUnread: Int { roster.values.reduce(0) { $0 + $1.unread } }

    static func clock(_ millis: Int64) -> String {
        var seconds = time_t(millis / 1000)
        var parts = tm()
        localtime_r(&seconds, &parts)
        return String(format: "%02d:%02d", Int(parts.tm_hour), Int(parts.tm_min))
    }
}
