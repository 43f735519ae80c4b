/// The screen: messages in a scroll region (rows 1...rows-2), a status line and an input line fixed below it.
///
/// Pure: produces the bytes that bring the terminal from what was shown to what should be shown. Rows that changed
/// are rewritten; everything else is left as it is. Text-only changes at the bottom scroll the region.
///
/// Pictures (sixel) follow rules learnt from real terminals, where erasing or writing a cell deletes the picture's
/// pixels under it (xterm), and scrolling a region moves pictures inconsistently (xterm moves them but does not clip
/// them at the region's top):
/// - Nothing is written over a picture once it is drawn: text rows are written first, pictures last, and a row a
///   picture covers is never erased, padded or overdrawn while the picture stays where it is.
/// - A picture that moved is drawn again at its new place instead of being scrolled, and one partly out of view is
///   drawn clipped to its rows in view (`SixelPicture` keeps the quantised pixels, so this costs no quantising).
/// - Pictures are drawn with the scroll region set to the whole screen and end at least two rows above the
///   screen's bottom: terminals that put the cursor on the row below a picture (VT340) or on its last row (xterm),
///   or that count a last partial band of six pixels, then never scroll.
public struct Screen: Sendable {
    public private(set) var columns: Int
    public private(set) var rows: Int
    /// What the message area shows now, top to bottom (exactly `messageRows`, padded with empty rows at the top).
    public private(set) var shown: [DisplayLine] = []
    private var needsFull = true
    /// Sixel bytes of pictures, whole or clipped, by picture and pixel rows: a redraw costs no encoding.
    private var sixelCache: [SixelKey: [UInt8]] = [:]

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
        let m = messageRows
        let visible = allLines.suffix(m)
        let new = Array(repeating: DisplayLine(""), count: m - visible.count) + visible
        let newPictures = Self.placements(new)
        var out: [UInt8] = Array("\u{1B}[?25l".utf8)
        var draw: [Placement]
        if needsFull || shown.count != m {
            out += Array("\u{1B}[0m\u{1B}[1;\(m)r\u{1B}[H\u{1B}[2J".utf8)
            for index in 0..<m where new[index].picture == nil && !new[index].text.isEmpty {
                out += textRow(index + 1, new[index])
            }
            draw = newPictures
            needsFull = false
        } else {
            var current = shown
            let oldPictures = Self.placements(current)
            if oldPictures.isEmpty && newPictures.isEmpty {
                let k = scrollAmount(old: current, new: new)
                if k > 0 {
                    out += Array("\u{1B}[\(m);1H".utf8) + [UInt8](repeating: 0x0A, count: k)
                    current = Array(current.dropFirst(k)) + Array(repeating: DisplayLine(""), count: k)
                }
            }
            // A picture that is still where it was, showing the same rows, stays; any other old picture goes with
            // the rows rewritten below (its rows differ from the new ones).
            draw = newPictures.filter { !oldPictures.contains($0) }
            for index in 0..<m where new[index].picture == nil && current[index] != new[index] {
                out += textRow(index + 1, new[index])
            }
        }
        if !draw.isEmpty {
            out += Array("\u{1B}[r".utf8)
            for placement in draw {
                for row in placement.screenRows { out += Array("\u{1B}[\(row);1H\u{1B}[2K".utf8) }
                out += Array("\u{1B}[\(placement.screenRows.lowerBound);1H".utf8)
                out += sixel(placement)
            }
            out += Array("\u{1B}[1;\(m)r".utf8)
        }
        shown = new
        trimCache(keeping: newPictures)
        out += Array("\u{1B}[\(rows - 1);1H\u{1B}[2K\(status)".utf8)
        out += Array("\u{1B}[\(rows);1H\u{1B}[2K\(prompt)\(input)".utf8)
        out += Array("\u{1B}[\(rows);\(min(columns, promptWidth + cursorColumn + 1))H\u{1B}[?25h".utf8)
        return out
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
                if !old[i + k].text.isEmpty { moved = true }
            }
            if matches && moved { return k }
        }
        return 0
    }

    private func textRow(_ number: Int, _ line: DisplayLine) -> [UInt8] {
        Array("\u{1B}[\(number);1H\u{1B}[2K\(line.text)".utf8)
    }

    // MARK: Pictures

    /// The rows of one picture in view: which of its rows, and where on the screen (1-based rows).
    struct Placement: Equatable {
        var row: PictureRow
        var pictureRows: Range<Int>
        var screenRows: Range<Int>
    }

    /// Runs of consecutive rows of the same picture, in order.
    static func placements(_ rows: [DisplayLine]) -> [Placement] {
        var result: [Placement] = []
        for (index, line) in rows.enumerated() {
            guard let part = line.picture else { continue }
            if var last = result.last, last.row.id == part.id, last.pictureRows.upperBound == part.row,
               last.screenRows.upperBound == index + 1 {
                last.pictureRows = last.pictureRows.lowerBound..<(part.row + 1)
                last.screenRows = last.screenRows.lowerBound..<(index + 2)
                result[result.count - 1] = last
            } else {
                result.append(Placement(row: part, pictureRows: part.row..<(part.row + 1), screenRows: (index + 1)..<(index + 2)))
            }
        }
        return result
    }

    private struct SixelKey: Hashable {
        var id: String
        var pixelRows: Range<Int>
    }

    private mutating func sixel(_ placement: Placement) -> [UInt8] {
        let height = placement.row.cellHeight
        let rows = (placement.pictureRows.lowerBound * height)..<(placement.pictureRows.upperBound * height)
        let key = SixelKey(id: placement.row.id, pixelRows: rows)
        if let bytes = sixelCache[key] { return bytes }
        let bytes = placement.row.picture.sixel(pixelRows: rows)
        sixelCache[key] = bytes
        return bytes
    }

    /// Keeps the cache to what is on screen once it holds more than a few screens' worth.
    private mutating func trimCache(keeping placements: [Placement]) {
        guard sixelCache.count > 32 else { return }
        let ids = Set(placements.map(\.row.id))
        sixelCache = sixelCache.filter { ids.contains($0.key.id) }
    }

    /// Bytes that give the terminal back: whole screen as scroll region, attributes off, cursor visible, below the
    /// last line.
    public static func restoreBytes(rows: Int) -> [UInt8] {
        Array("\u{1B}[r\u{1B}[0m\u{1B}[?25h\u{1B}[\(max(1, rows));1H\r\n".utf8)
    }
}
