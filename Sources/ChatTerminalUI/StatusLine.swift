/// Symbols of the status line and the attachment card, from WGL4 (Windows Glyph List 4): the set that every common
/// monospace font has (DejaVu Sans Mono, Liberation Mono, Consolas, Courier New, Menlo), so none of them shows as
/// an empty box. Pictographs such as U+1F4CE (paperclip), and U+25CC, U+25B8, U+2716, U+26A0 are not in it.
enum Glyphs {
    static let online = "●"
    static let offline = "○"
    static let failed = "×"
    static let current = "►"
    static let away = "·"
    static let separator = "│"
    static let upload = "↑"
    static let warning = "‼"
    static let barFull = "█"
    static let barEmpty = "░"
    static let all = [online, offline, failed, current, away, separator, upload, warning, barFull, barEmpty]
}

/// The status line: connection, who this is, the roster (agents), typing, upload progress, scrolling, unsent count.
struct StatusLine {
    var state: ChatState
    var attention: Set<String>
    var progress: String?
    var scrollBack: Int

    /// The line, cut or padded to `columns`, in reverse video when colours are on.
    func text(columns: Int, style: Style) -> String {
        var parts: [String] = []
        switch state.status {
        case .connecting(let attempt):
            parts.append(attempt > 1 ? "\(Glyphs.offline) connecting (attempt \(attempt))" : "\(Glyphs.offline) connecting")
        case .syncing: parts.append("\(Glyphs.offline) syncing")
        case .online: parts.append("\(Glyphs.online) online")
        case .offline(let reason, let retry): parts.append("\(Glyphs.offline) offline: \(reason); retry in \(retry)s")
        case .failed(let reason): parts.append("\(Glyphs.failed) \(reason)")
        }
        if state.isAgent {
            parts.append("\(state.user) (agent)")
            parts.append("unread \(state.totalUnread)")
            let roster = state.rosterOrder().map { entry -> String in
                var name = entry.customer
                if entry.customer == state.current { name = Glyphs.current + name }
                if entry.unread > 0 { name += "(\(entry.unread))" }
                if attention.contains(entry.customer) { name += "!" }
                if !entry.online { name = Glyphs.away + name }
                return name
            }
            if let current = state.current, let summary = state.workflowSummary(of: current) { parts.append("\(current): \(summary)") }
            if state.rosterView != .all { parts.append("view: \(state.rosterView.rawValue)") }
            if !roster.isEmpty { parts.append(roster.joined(separator: " ")) }
        } else {
            parts.append(state.user)
            if let agents = state.agentsOnline { parts.append(agents == 1 ? "1 agent online" : "\(agents) agents online") }
        }
        if let typing = state.typingText() { parts.append(typing) }
        if let progress { parts.append(progress) }
        if scrollBack > 0 { parts.append("scrolled up \(scrollBack) lines: PgDn") }
        let pending = state.pending.count
        if pending > 0 { parts.append("\(pending) unsent") }
        let plain = TextWidth.sanitize(" " + parts.joined(separator: " \(Glyphs.separator) "))
        let (fitted, width) = TextWidth.prefix(Substring(plain), fitting: columns)
        let padded = String(fitted) + String(repeating: " ", count: max(0, columns - width))
        return style.colors ? "\u{1B}[7m" + padded + "\u{1B}[0m" : padded
    }
}
