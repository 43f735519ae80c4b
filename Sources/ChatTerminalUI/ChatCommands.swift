import ChatProtocol
import Foundation

/// Typed commands, opening conversations, completion and the history and read frames they send.
extension ChatState {
    mutating func command(_ line: String) -> Outcome {
        let parts = line.split(separator: " ", maxSplits: 1)
        let name = parts.first.map(String.init) ?? ""
        let argument = parts.count > 1 ? parts[1].trimmingCharacters(in: .whitespaces) : ""
        var outcome = Outcome()
        if ["/who", "/switch", "/next"].contains(name), role == nil || (isAgent && !(rosterLoaded && isOnline)) {
            waitingForRoster.append(line)
            addNotice(.info, "\(name) runs as soon as the list of customers has arrived")
            return outcome
        }
        if let workflow = workflowCommand(name, argument) { return workflow }
        switch name {
        case "/quit", "/exit":
            outcome.quit = true
        case "/help":
            addNotice(.info, "commands: /history [N], /search WORDS, /attach PATH, /save N [PATH], /quit"
                + (isAgent ? ", /who, /switch NAME, /next, /broadcast TEXT, /note TEXT, /resolve, /reopen, /snooze [2h], /take, "
                    + "/assign NAME|none, /view mine|unassigned|all, /canned [NAME]" : "") + "; start a message with // to send a slash")
        case "/history":
            let count = argument.isEmpty ? 50 : Int(argument) ?? -1
            guard count > 0 else { addNotice(.error, "usage: /history [N] (N a positive number)"); break }
            guard let conversation = current else { addNotice(.error, "no conversation open"); break }
            let limit = min(count, limits?.historyPageMax ?? count)
            let before = conversations[conversation]?.oldestLoadedSeq
            if before == 1 { addNotice(.info, "this is the beginning of the conversation"); break }
            outcome.frames += historyRequest(conversation, before: before, limit: limit)
        case "/search":
            outcome.frames += searchRequest(argument)
        case "/who" where isAgent:
            if roster.isEmpty { addNotice(.info, "no customers yet") }
            for entry in rosterOrder() {
                let last = entry.lastMessage.map { " last \(Self.clock($0.sentAt)) \($0.sender): \($0.text.prefix(40))" } ?? ""
                let owner = entry.assignee.map { " \($0)" } ?? " unassigned"
                addNotice(.info, "\(entry.customer) \(entry.online ? "online" : "offline") \(entry.status.rawValue)\(owner) unread \(entry.unread)\(last)")
            }
        case "/switch" where isAgent:
            guard !argument.isEmpty else { addNotice(.error, "usage: /switch NAME"); break }
            guard roster[argument] != nil || conversations[argument] != nil || searchConversations.contains(argument) else {
                addNotice(.error, "no customer named \(argument) (/who lists them)")
                break
            }
            outcome.merge(open(argument))
        case "/next" where isAgent:
            guard let next = nextUnread() else { addNotice(.info, "no conversation has unread messages"); break }
            outcome.merge(open(next))
        case "/broadcast" where isAgent:
            guard !argument.isEmpty else { addNotice(.error, "usage: /broadcast TEXT"); break }
            let message = PendingMessage(clientId: makeId(), text: argument, conversation: nil, broadcast: true,
                                         attachments: nil, createdAt: now() + clockOffset)
            pending.append(message)
            if isOnline { outcome.frames.append(frame(for: message)) }
        default:
            addNotice(.error, "unknown command \(name) (/help lists them)")
        }
        return outcome
    }

    /// Opens a conversation (agents): loads its recent history if needed and marks it read.
    public mutating func open(_ name: String) -> Outcome {
        current = name
        var outcome = Outcome()
        if conversations[name] == nil { conversations[name] = Conversation(name: name) }
        if conversations[name]?.syncedSeq == nil {
            outcome.frames += historyRequest(name, before: nil, limit: 50)
        }
        outcome.frames += markRead(name)
        return outcome
    }

    /// The conversation with the oldest unread message.
    public func nextUnread() -> String? {
        roster.values.filter { $0.unread > 0 && $0.customer != current && isShown($0) }
            .min { (firstUnreadAt[$0.customer] ?? $0.lastMessage?.sentAt ?? 0, $0.customer)
                < (firstUnreadAt[$1.customer] ?? $1.lastMessage?.sentAt ?? 0, $1.customer) }?.customer
    }

    /// Completions for Tab: commands, and customer names after `/switch`.
    public func completions(for word: String, isFirstWord: Bool, line: String) -> [String] {
        if isFirstWord && word.hasPrefix("/") {
            var commands = ["/history", "/search", "/attach", "/save", "/help", "/quit"]
            if isAgent { commands += ["/who", "/switch", "/next", "/broadcast"] + Self.workflowCommands }
            return commands.filter { $0.hasPrefix(word) }.sorted()
        }
        if line.hasPrefix("/canned ") {
            return cannedReplies.map(\.name).filter { $0.hasPrefix(word) }
        }
        if line.hasPrefix("/assign ") {
            return (["none"] + Set(roster.values.compactMap(\.assignee)).sorted()).filter { $0.hasPrefix(word) }
        }
        if line.hasPrefix("/view ") {
            return RosterView.allCases.map(\.rawValue).filter { $0.hasPrefix(word) }
        }
        if line.hasPrefix("/switch ") {
            return Set(roster.keys).union(conversations.keys).filter { $0.hasPrefix(word) }.sorted()
        }
        return []
    }

    mutating func historyRequest(_ conversation: String, before: Int?, limit: Int) -> [ClientFrame] {
        guard isOnline else {
            addNotice(.error, "offline: history will load after reconnecting")
            return []
        }
        requestCounter += 1
        let id = "h\(requestCounter)"
        historyRequests[id] = (conversation, before != nil)
        return [.history(HistoryRequest(conversation: role == .customer ? nil : conversation, before: before,
                                        limit: limit, requestId: id))]
    }

    /// A read marker for everything shown of `name`, when there is something new from the other side.
    mutating func markRead(_ name: String) -> [ClientFrame] {
        guard isOnline, let conversation = conversations[name] else { return [] }
        let newest = conversation.messages.values.filter { $0.sender != user }.map(\.seq).max() ?? 0
        var frames: [ClientFrame] = []
        if newest > conversation.readSentSeq {
            conversations[name]?.readSentSeq = newest
            frames.append(.read(ReadMarker(conversation: role == .customer ? nil : name, seq: newest)))
        }
        firstUnreadAt[name] = nil
        return frames
    }
}
