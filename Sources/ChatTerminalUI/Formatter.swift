import ChatProtocol
import Foundation
import TerminalGraphics

/// SGR styling that turns itself off under `NO_COLOR` / `TERM=dumb`.
public struct Style: Sendable {
    public var colors: Bool

    public init(colors: Bool) { self.colors = colors }

    public func apply(_ codes: String, _ text: String) -> String {
        colors ? "\u{1B}[\(codes)m\(text)\u{1B}[0m" : text
    }

    public func dim(_ text: String) -> String { apply("2", text) }
    public func bold(_ text: String) -> String { apply("1", text) }
    public func reverse(_ text: String) -> String { apply("7", text) }

    /// A stable colour per name from the 256-colour cube's brighter part (not the first 16, which vary).
    public func sender(_ name: String) -> String {
        let palette = [39, 41, 69, 75, 105, 111, 135, 141, 170, 172, 178, 208, 214, 35, 77, 113]
        var hash: UInt32 = 2_166_136_261
        for byte in name.utf8 { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        return apply("1;38;5;\(palette[Int(hash % UInt32(palette.count))])", name)
    }
}

/// One row of the message area: styled text, or one row of a preview drawn as a graphic (sixel).
public struct DisplayLine: Sendable, Equatable {
    public var text: String
    public var picture: PictureRow?

    public init(_ text: String) { self.text = text }

    public init(picture: PictureRow) {
        text = ""
        self.picture = picture
    }
}

/// Row `row` of a picture `rows` text rows tall. The screen draws the rows of a picture that are in view as one
/// graphic; two rows are the same when they show the same row of the same picture.
public struct PictureRow: Sendable, Equatable {
    public var id: String
    public var row: Int
    public var rows: Int
    /// Pixels per text row the picture was laid out for.
    public var cellHeight: Int
    public var picture: SixelPicture

    public init(id: String, row: Int, rows: Int, cellHeight: Int, picture: SixelPicture) {
        self.id = id
        self.row = row
        self.rows = rows
        self.cellHeight = cellHeight
        self.picture = picture
    }

    public static func == (a: PictureRow, b: PictureRow) -> Bool {
        a.id == b.id && a.row == b.row && a.rows == b.rows && a.cellHeight == b.cellHeight
    }
}

/// Formats timeline items as display lines for a given width.
public struct MessageFormatter: Sendable {
    public var style: Style
    public var columns: Int
    public var user: String

    public init(style: Style, columns: Int, user: String) {
        self.style = style
        self.columns = max(20, columns)
        self.user = user
    }

    static let indent = 6
    /// Marks a private note, which the customer never sees.
    static let noteTag = " [note, agents only]"

    public func lines(for item: TimelineItem, attachmentLines: (ChatMessage, Int) -> [DisplayLine] = { _, _ in [] })
        -> [DisplayLine] {
        switch item {
        case .message(let message, let delivery) where message.event != nil:
            // A status change or assignment: one quiet line, not a message from someone.
            let text = "── \(TextWidth.sanitize(message.text)) ──"
            return body(header: ChatState.clock(message.sentAt) + " ", headerWidth: 6, text: text, mark: mark(delivery))
                .map { DisplayLine(style.apply("2;3", $0.text)) }
        case .message(let message, let delivery):
            var header = ChatState.clock(message.sentAt) + " "
            var headerWidth = 6
            let name = TextWidth.sanitize(message.sender)
            if message.sender == user {
                header += style.bold("» ") + style.sender(name) + style.dim(" (me)")
                headerWidth += 2 + TextWidth.width(name) + 5
            } else {
                header += style.sender(name)
                headerWidth += TextWidth.width(name)
            }
            if message.senderRole == .agent && message.sender != user {
                header += style.dim(" [agent]")
                headerWidth += 8
            }
            appendTags(broadcast: message.broadcast, note: message.isPrivate == true, to: &header, width: &headerWidth)
            var result = body(header: header, headerWidth: headerWidth, text: TextWidth.sanitize(message.text),
                              mark: mark(delivery))
            for index in (message.attachments ?? []).indices {
                result += attachmentLines(message, index)
            }
            return result
        case .pending(let message):
            var header = ChatState.clock(message.createdAt) + " " + style.bold("» ") + style.sender(user) + style.dim(" (me)")
            var headerWidth = 6 + 2 + TextWidth.width(user) + 5
            appendTags(broadcast: message.broadcast, note: message.note, to: &header, width: &headerWidth)
            let text = message.text.isEmpty && message.attachments != nil ? "(attachment)" : message.text
            return body(header: header, headerWidth: headerWidth, text: TextWidth.sanitize(text), mark: mark(.sending))
        case .notice(let notice):
            let time = ChatState.clock(notice.time) + " "
            let text = TextWidth.sanitize(notice.text)
            let wrapped = TextWidth.wrap(text, columns: columns - Self.indent - 3)
            return wrapped.enumerated().map { index, line in
                let lead = index == 0 ? time : String(repeating: " ", count: Self.indent)
                switch notice.kind {
                case .info:
                    return DisplayLine(lead + style.apply("36", (index == 0 ? "-- " : "   ") + SearchHighlight.render(line, style: style, base: "36")))
                case .error: return DisplayLine(lead + style.apply("1;31", (index == 0 ? "!! " : "   ") + line))
                }
            }
        }
    }

    /// The delivery mark after an own message, and its width.
    func mark(_ delivery: Delivery?) -> (text: String, width: Int) {
        switch delivery {
        case nil: ("", 0)
        case .sending: (" " + style.dim("… sending"), 10)
        case .stored: (" " + style.apply("32", "✓"), 2)
        case .read: (" " + style.apply("1;32", "✓✓ read"), 8)
        }
    }

    /// The end of a message's header: its broadcast and note tags, then ": ".
    private func appendTags(broadcast: Bool, note: Bool, to header: inout String, width: inout Int) {
        if broadcast {
            header += style.apply("35", " [broadcast]")
            width += 12
        }
        if note {
            header += style.apply("30;103", Self.noteTag)
            width += TextWidth.width(Self.noteTag)
        }
        header += ": "
        width += 2
    }

    private func body(header: String, headerWidth: Int, text: String, mark: (text: String, width: Int)) -> [DisplayLine] {
        var out: [DisplayLine] = []
        let markWidth = mark.width
        let first = max(8, columns - headerWidth)
        let rest = max(8, columns - Self.indent)
        // Wrap the first line narrower, the rest at the indent.
        var lines = TextWidth.wrap(text, columns: first)
        if lines.count > 1 {
            let tail = lines.dropFirst().joined(separator: " ")
            lines = [lines[0]] + TextWidth.wrap(tail, columns: rest)
        }
        for (index, line) in lines.enumerated() {
            let isLast = index == lines.count - 1
            let prefix = index == 0 ? header : String(repeating: " ", count: Self.indent)
            let lineWidth = (index == 0 ? headerWidth : Self.indent) + TextWidth.width(line)
            if isLast && lineWidth + markWidth > columns {
                out.append(DisplayLine(prefix + line))
                out.append(DisplayLine(String(repeating: " ", count: Self.indent) + mark.text))
            } else {
                out.append(DisplayLine(prefix + line + (isLast ? mark.text : "")))
            }
        }
        return out
    }

    /// What an attachment's card says after its type and size: playing time, animation, metadata removed.
    public static func attachmentDetails(_ attachment: Attachment) -> [String] {
        var details: [String] = []
        if let milliseconds = attachment.durationMs { details.append(duration(milliseconds)) }
        if attachment.animated == true { details.append(attachment.frames.map { "animated, \($0) frames" } ?? "animated") }
        if attachment.metadataRemoved == true { details.append("location removed") }
        return details
    }

    /// `0:07`, `12:30`, `1:02:03` (rounded down to the second).
    public static func duration(_ milliseconds: Int) -> String {
        let seconds = max(0, milliseconds) / 1000
        let (hours, minutes, rest) = (seconds / 3600, seconds / 60 % 60, seconds % 60)
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return hours > 0 ? "\(hours):\(two(minutes)):\(two(rest))" : "\(minutes):\(two(rest))"
    }

    /// `1.5 MB`, `320 B`.
    public static func byteCount(_ bytes: Int) -> String {
        if bytes < 1024 { return "\(bytes) B" }
        let units = ["KB", "MB", "GB", "TB"]
        var value = Double(bytes) / 1024
        var unit = 0
        while value >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
        return String(format: value < 10 ? "%.1f" : "%.0f", value) + " " + units[unit]
    }
}
