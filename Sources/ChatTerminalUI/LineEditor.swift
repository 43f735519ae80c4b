import Foundation

/// A key press decoded from terminal input.
public enum Key: Sendable, Equatable {
    case character(Character)
    case enter, backspace, delete, tab
    case left, right, up, down, home, end, pageUp, pageDown
    case wordLeft, wordRight
    case ctrl(Character)  // a...z, except those with their own case
    case escape
}

/// Turns raw terminal bytes into keys. Keeps incomplete UTF-8 sequences and escape sequences between calls, since a
/// read may end in the middle of one.
public struct KeyDecoder: Sendable {
    private var pending: [UInt8] = []
    /// Longer than any probe answer (`OSC 4;255;rgb:ffff/ffff/ffff ST` is 29 bytes).
    static let longestAnswer = 256

    public init() {}

    public mutating func feed(_ bytes: [UInt8]) -> [Key] {
        pending.append(contentsOf: bytes)
        var keys: [Key] = []
        var i = 0
        let b = pending
        parse: while i < b.count {
            let byte = b[i]
            switch byte {
            case 0x0D, 0x0A:
                keys.append(.enter); i += 1
            case 0x7F, 0x08:
                keys.append(.backspace); i += 1
            case 0x09:
                keys.append(.tab); i += 1
            case 0x1B:
                guard i + 1 < b.count else {
                    // A lone ESC at the end of a read is the Escape key; sequences arrive in one read.
                    keys.append(.escape); i += 1; break
                }
                if b[i + 1] == 0x5B || b[i + 1] == 0x4F {  // CSI or SS3
                    var j = i + 2
                    while j < b.count, !(0x40...0x7E).contains(b[j]) { j += 1 }
                    guard j < b.count else { break parse }  // incomplete: wait for more
                    let params = String(decoding: b[(i + 2)..<j], as: UTF8.self)
                    switch (b[j], params) {
                    case (0x41, _): keys.append(.up)
                    case (0x42, _): keys.append(.down)
                    case (0x43, let p): keys.append(p.hasSuffix(";5") || p.hasSuffix(";3") ? .wordRight : .right)
                    case (0x44, let p): keys.append(p.hasSuffix(";5") || p.hasSuffix(";3") ? .wordLeft : .left)
                    case (0x48, _): keys.append(.home)
                    case (0x46, _): keys.append(.end)
                    case (0x7E, "1"), (0x7E, "7"): keys.append(.home)
                    case (0x7E, "4"), (0x7E, "8"): keys.append(.end)
                    case (0x7E, "3"): keys.append(.delete)
                    case (0x7E, "5"): keys.append(.pageUp)
                    case (0x7E, "6"): keys.append(.pageDown)
                    default: break  // unknown sequences (function keys, focus events) are ignored
                    }
                    i = j + 1
                } else if b[i + 1] == 0x5D || b[i + 1] == 0x50, i + 2 < b.count, (0x30...0x39).contains(b[i + 2]) {
                    // OSC or DCS with a number: a terminal's late answer to the start-up probe (a palette colour),
                    // never a key. Dropped up to its BEL or ST; one still arriving waits for the rest, up to a size
                    // no answer has (then it was typed after all, and is taken as keys).
                    var j = i + 2
                    while j < b.count, j - i < Self.longestAnswer, b[j] != 0x07,
                          !(b[j] == 0x1B && j + 1 < b.count && b[j + 1] == 0x5C) { j += 1 }
                    if j - i >= Self.longestAnswer {
                        keys.append(.escape); i += 1
                    } else if j < b.count {
                        i = b[j] == 0x07 ? j + 1 : j + 2
                    } else {
                        break parse
                    }
                } else if b[i + 1] == 0x62 {
                    keys.append(.wordLeft); i += 2  // Alt-b
                } else if b[i + 1] == 0x66 {
                    keys.append(.wordRight); i += 2  // Alt-f
                } else {
                    keys.append(.escape); i += 1
                }
            case 0x01...0x1A:
                keys.append(.ctrl(Character(Unicode.Scalar(byte + 0x60)))); i += 1
            case 0x00, 0x1C...0x1F:
                i += 1
            default:
                // A run of printable UTF-8 is decoded as one string, so grapheme clusters typed or pasted together
                // (emoji with modifiers, ZWJ sequences) stay one Character.
                var j = i
                var complete = i
                while j < b.count, b[j] >= 0x20, b[j] != 0x7F {
                    let length: Int
                    switch b[j] {
                    case 0xC0...0xDF: length = 2
                    case 0xE0...0xEF: length = 3
                    case 0xF0...0xF7: length = 4
                    default: length = 1
                    }
                    guard j + length <= b.count else { break }
                    j += length
                    complete = j
                }
                guard complete > i else { break parse }  // an incomplete sequence: wait for more
                let text = String(decoding: b[i..<complete], as: UTF8.self)
                for character in text { keys.append(.character(character)) }
                i = complete
            }
        }
        pending = Array(b[i...])
        return keys
    }
}

/// What the owner of the editor should do after a key.
public enum EditorAction: Sendable, Equatable {
    case none
    case changed
    case submit(String)
    case complete  // Tab: the owner completes the word before the cursor
    case quit  // Ctrl-C, or Ctrl-D on an empty line
}

/// A one-line UTF-8 editor: grapheme clusters as the unit of editing, terminal columns as the unit of display.
public struct LineEditor: Sendable {
    /// The line as grapheme clusters; combining scalars typed separately merge into the previous cluster.
    public private(set) var characters: [Character] = []
    /// Index into `characters`.
    public private(set) var cursor = 0
    public private(set) var history: [String] = []
    private var historyIndex: Int?
    private var draft: [Character] = []
    public var maxHistory = 500

    public init() {}

    public var text: String { String(characters) }

    public mutating func setText(_ text: String) {
        characters = Array(text)
        cursor = characters.count
    }

    public mutating func handle(_ key: Key) -> EditorAction {
        switch key {
        case .character(let c):
            insert(c)
        case .enter:
            let line = text
            if !line.trimmingCharacters(in: .whitespaces).isEmpty {
                if history.last != line { history.append(line) }
                if history.count > maxHistory { history.removeFirst(history.count - maxHistory) }
            }
            characters = []
            cursor = 0
            historyIndex = nil
            return .submit(line)
        case .backspace, .ctrl("h"):
            guard cursor > 0 else { return .none }
            cursor -= 1
            characters.remove(at: cursor)
        case .delete:
            guard cursor < characters.count else { return .none }
            characters.remove(at: cursor)
        case .left, .ctrl("b"):
            guard cursor > 0 else { return .none }
            cursor -= 1
        case .right, .ctrl("f"):
            guard cursor < characters.count else { return .none }
            cursor += 1
        case .home, .ctrl("a"):
            cursor = 0
        case .end, .ctrl("e"):
            cursor = characters.count
        case .wordLeft:
            while cursor > 0, characters[cursor - 1] == " " { cursor -= 1 }
            while cursor > 0, characters[cursor - 1] != " " { cursor -= 1 }
        case .wordRight:
            while cursor < characters.count, characters[cursor] == " " { cursor += 1 }
            while cursor < characters.count, characters[cursor] != " " { cursor += 1 }
        case .ctrl("u"):
            characters.removeFirst(cursor)
            cursor = 0
        case .ctrl("k"):
            characters.removeLast(characters.count - cursor)
        case .ctrl("w"):
            var start = cursor
            while start > 0, characters[start - 1] == " " { start -= 1 }
            while start > 0, characters[start - 1] != " " { start -= 1 }
            characters.removeSubrange(start..<cursor)
            cursor = start
        case .up, .ctrl("p"):
            guard !history.isEmpty else { return .none }
            let index: Int
            if let current = historyIndex {
                guard current > 0 else { return .none }
                index = current - 1
            } else {
                draft = characters
                index = history.count - 1
            }
            historyIndex = index
            characters = Array(history[index])
            cursor = characters.count
        case .down, .ctrl("n"):
            guard let current = historyIndex else { return .none }
            if current + 1 < history.count {
                historyIndex = current + 1
                characters = Array(history[current + 1])
            } else {
                historyIndex = nil
                characters = draft
            }
            cursor = characters.count
        case .tab:
            return .complete
        case .ctrl("c"):
            return .quit
        case .ctrl("d"):
            if characters.isEmpty { return .quit }
            guard cursor < characters.count else { return .none }
            characters.remove(at: cursor)
        default:
            return .none
        }
        return .changed
    }

    private mutating func insert(_ c: Character) {
        // A scalar that extends the cluster before it (a combining mark, a skin tone, ZWJ) joins it: Swift's
        // grapheme breaking decides.
        if cursor > 0 {
            let joined = String(characters[cursor - 1]) + String(c)
            if joined.count == 1, let merged = joined.first {
                characters[cursor - 1] = merged
                return
            }
        }
        characters.insert(c, at: cursor)
        cursor += 1
    }

    /// The word before the cursor (for completion) and where it starts.
    public var wordBeforeCursor: (word: String, start: Int) {
        var start = cursor
        while start > 0, characters[start - 1] != " " { start -= 1 }
        return (String(characters[start..<cursor]), start)
    }

    /// Replaces the word before the cursor.
    public mutating func replaceWordBeforeCursor(with word: String) {
        let start = wordBeforeCursor.start
        characters.replaceSubrange(start..<cursor, with: Array(word))
        cursor = start + word.count
    }

    /// The part of the line to show in `columns` columns and the cursor's column within it: scrolls horizontally so
    /// the cursor stays visible, never splitting a wide character.
    public func visible(columns: Int) -> (text: String, cursorColumn: Int) {
        let columns = max(2, columns)
        let widths = characters.map(TextWidth.width(of:))
        let cursorColumn = widths[0..<cursor].reduce(0, +)
        var start = 0
        var offset = 0
        // Keep one column free after the cursor.
        while cursorColumn - offset > columns - 1, start < cursor {
            offset += widths[start]
            start += 1
        }
        var used = 0
        var end = start
        while end < characters.count, used + widths[end] <= columns {
            used += widths[end]
            end += 1
        }
        return (String(characters[start..<end]), cursorColumn - offset)
    }
}
