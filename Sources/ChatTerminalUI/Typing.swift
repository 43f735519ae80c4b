import ChatProtocol

/// Typing indicators: live only, never stored (docs/PROTOCOL.md, `typing`). A client says it is typing at most every
/// `typingResendMs` while the input line has text, and that it stopped when the line is emptied or sent; an
/// indicator shown for someone else lapses after `typingShownMs` without news, so a lost "stopped" frame cannot
/// leave it on.
extension ChatState {
    static let typingResendMs: Int64 = 3_000
    static let typingShownMs: Int64 = 6_000

    /// The input line changed to `text`: frames to send, if any. Commands (`/...`) are not typing.
    public mutating func inputChanged(_ text: String) -> Outcome {
        var outcome = Outcome()
        guard isOnline, let conversation = current ?? (isAgent ? nil : user) else { return outcome }
        let typing = !text.isEmpty && !text.hasPrefix("/")
        let now = now()
        if typing {
            if let sent = typingSentAt, now - sent < Self.typingResendMs { return outcome }
            typingSentAt = now
        } else {
            guard typingSentAt != nil else { return outcome }
            typingSentAt = nil
        }
        outcome.frames = [.typing(Typing(conversation: isAgent ? conversation : nil, active: typing))]
        return outcome
    }

    mutating func noteTyping(_ notice: TypingNotice) {
        guard notice.user != user else { return }
        let now = now()
        var typists = (typingUntil[notice.conversation] ?? [:]).filter { $0.value > now }  // lapsed ones go
        typists[notice.user] = notice.active ? now + Self.typingShownMs : nil
        typingUntil[notice.conversation] = typists.isEmpty ? nil : typists
    }

    /// "sam is typing…" for the open conversation, or nil.
    public func typingText() -> String? {
        guard let conversation = current ?? (isAgent ? nil : user) else { return nil }
        let now = now()
        let names = (typingUntil[conversation] ?? [:]).filter { $0.value > now }.keys.sorted()
        switch names.count {
        case 0: return nil
        case 1: return "\(names[0]) is typing…"
        default: return "\(names.joined(separator: ", ")) are typing…"
        }
    }
}
