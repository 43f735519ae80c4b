/// The screen: messages in a scroll region (rows 1...rows-2), a status line and an input line fixed below it.
///
/// Pure: produces the bytes that bring the terminal from what was shown to what should be shown. New lines at the
/// bottom scroll the region (the terminal moves the text and any sixel graphic itself); rows that changed in place
/// (a delivery mark) are rewritten alone; everything else is left as it is.
public struct Screen: Sendable {
    public private(set) var columns: Int
    public private(set) var rows: Int
    /// What the message area shows now, top to bottom (at most `messageRows`).
    public private(set) var shown: [DisplayLine] = []
    private var needsFull = true

    public init(columns: Int, rows: Int) {
        self.columns = max(10, columns)
        self.rows = max(4, rows)
    }

    public var messageRows: Int { rows - 2 }

    public mutating func resize(columns: Int, rows: Int) {
        self.columns = max(10, columns)
        self.rows = max(4, rows)
        needsFull = true
    }

    /// Forces a full repaint on the next `render` (after a conversation switch or Ctrl-L).
    public mutating func invalidate() { needsFull = true }

    /// Bytes that show `lines` (bottom-aligned: the last lines of the timeline), `status` and the input line.
    public mutating func render(lines allLines: [DisplayLine], status: String, prompt: String, promptWidth: Int,
                                input: String, cursorColumn: Int) -> [UInt8] {
        var out = "\u{1B}[?25l"
        let visible = Array(allLines.suffix(messageRows))
        let m = messageRows
        if needsFull {
            out += "\u{1B}[0m\u{1B}[1;\(m)r\u{1B}[H\u{1B}[2J"
            let top = m - visible.count  // bottom-aligned, as in the incremental path
            for (index, line) in visible.enumerated() {
                out += row(top + index + 1, line, visible: visible, index: index)
            }
            needsFull = false
        } else {
            // Align both bottom-up: row i of the area shows `old[i]` / `new[i]`, padded at the top.
            let old = Array(repeating: DisplayLine(""), count: m - shown.count) + shown
            let new = Array(repeating: DisplayLine(""), count: m - visible.count) + visible
            let k = scrollAmount(old: old, new: new)
            var current = old
            if k > 0 {
                out += "\u{1B}[\(m);1H" + String(repeating: "\n", count: k)
                current = Array(old.dropFirst(k)) + Array(repeating: DisplayLine(""), count: k)
            }
            for index in 0..<m where current[index] != new[index] {
                out += row(index + 1, new[index], visible: new, index: index)
            }
        }
        shown = visible
        out += "\u{1B}[\(rows - 1);1H\u{1B}[2K" + status
        out += "\u{1B}[\(rows);1H\u{1B}[2K" + prompt + input
        out += "\u{1B}[\(rows);\(min(columns, promptWidth + cursorColumn + 1))H\u{1B}[?25h"
        return Array(out.utf8)
    }

    /// How many rows the area scrolled: the largest k < m for which the old rows k... equal the new rows ...m-k and
    /// at least one non-empty row moved (so a scroll saves rewriting).
    func scrollAmount(old: [DisplayLine], new: [DisplayLine]) -> Int {
        let m = old.count
        if old == new { return 0 }
        for k in 1..<max(1, m) {
            var matches = true
            var moved = false
            for i in 0..<(m - k) {
                if old[i + k] != new[i] { matches = false; break }
                if !old[i + k].text.isEmpty || old[i + k].graphicId != nil { moved = true }
            }
            if matches && moved { return k }
        }
        return 0
    }

    private func row(_ number: Int, _ line: DisplayLine, visible: [DisplayLine], index: Int) -> String {
        var out = "\u{1B}[\(number);1H\u{1B}[2K"
        if let graphic = line.graphic {
            // A sixel needs its rows and one spare row below inside the area (it moves the cursor down past it).
            if number + line.graphicRows <= messageRows {
                out += String(decoding: graphic, as: UTF8.self)
            } else {
                out += "[preview: scroll down to see it]"
            }
        } else {
            out += line.text
        }
        return out
    }

    /// Bytes that give the terminal back: whole screen as scroll region, attributes off, cursor visible, below the
    /// last line.
    public static func restoreBytes(rows: Int) -> [UInt8] {
        Array("\u{1B}[r\u{1B}[0m\u{1B}[?25h\u{1B}[\(max(1, rows));1H\r\n".utf8)
    }
}
