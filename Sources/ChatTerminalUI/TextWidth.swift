/// Terminal column widths of text.
///
/// No Swift library on this machine provides `wcwidth` data for Unicode (Foundation has none, and glibc's `wcwidth`
/// depends on the process locale and lags behind emoji), so this is a small table of the common ranges from
/// Unicode's EastAsianWidth (W/F) and emoji presentation data. Widths are per grapheme cluster (Swift `Character`):
/// what the terminal draws as one glyph.
public enum TextWidth {
    /// Columns a whole string takes.
    public static func width<S: StringProtocol>(_ text: S) -> Int {
        var total = 0
        for character in text { total += width(of: character) }
        return total
    }

    /// Columns one grapheme cluster takes: 0 (controls, lone combining marks), 1 or 2.
    public static func width(of character: Character) -> Int {
        let scalars = character.unicodeScalars
        guard let first = scalars.first else { return 0 }
        // An emoji presentation selector or a skin tone/ZWJ sequence makes the cluster a wide emoji.
        if scalars.count > 1, scalars.contains(where: { $0.value == 0xFE0F || (0x1F3FB...0x1F3FF).contains($0.value) }) {
            return 2
        }
        if (0x1F1E6...0x1F1FF).contains(first.value) { return 2 }  // regional indicator (flag) pairs
        let base = width(of: first)
        if base > 0 { return base }
        // A cluster starting with a zero-width scalar (e.g. a lone combining mark): the widest of the rest.
        return scalars.dropFirst().map { width(of: $0) }.max() ?? 0
    }

    /// Columns of a single scalar, ignoring clusters.
    public static func width(of scalar: Unicode.Scalar) -> Int {
        let v = scalar.value
        if v == 0 { return 0 }
        if v < 0x20 || (0x7F..<0xA0).contains(v) { return 0 }
        if v < 0x300 { return 1 }
        if isZeroWidth(v) { return 0 }
        if isWide(v) { return 2 }
        return 1
    }

    static func isZeroWidth(_ v: UInt32) -> Bool {
        switch v {
        case 0x0300...0x036F, 0x0483...0x0489, 0x0591...0x05BD, 0x0610...0x061A, 0x064B...0x065F, 0x0670,
             0x06D6...0x06DC, 0x06DF...0x06E4, 0x0E31, 0x0E34...0x0E3A, 0x0E47...0x0E4E,
             0x0900...0x0902, 0x093A, 0x093C, 0x0941...0x0948, 0x094D,
             0x1AB0...0x1AFF, 0x1DC0...0x1DFF, 0x200B...0x200F, 0x2028...0x202E, 0x2060...0x2064,
             0x20D0...0x20FF, 0xFE00...0xFE0F, 0xFE20...0xFE2F, 0xFEFF, 0x1F3FB...0x1F3FF, 0xE0000...0xE0FFF,
             0x302A...0x302D, 0x3099...0x309A:
            return true
        default:
            return false
        }
    }

    static func isWide(_ v: UInt32) -> Bool {
        switch v {
        case 0x1100...0x115F,  // Hangul Jamo initial consonants
             0x231A...0x231B, 0x2329...0x232A, 0x23E9...0x23EC, 0x23F0, 0x23F3, 0x25FD...0x25FE,
             0x2614...0x2615, 0x2648...0x2653, 0x267F, 0x2693, 0x26A1, 0x26AA...0x26AB, 0x26BD...0x26BE,
             0x26C4...0x26C5, 0x26CE, 0x26D4, 0x26EA, 0x26F2...0x26F3, 0x26F5, 0x26FA, 0x26FD, 0x2705,
             0x270A...0x270B, 0x2728, 0x274C, 0x274E, 0x2753...0x2755, 0x2757, 0x2795...0x2797, 0x27B0, 0x27BF,
             0x2B1B...0x2B1C, 0x2B50, 0x2B55,  // emoji with default emoji presentation in the BMP
             0x2E80...0x303E,  // CJK radicals, Kangxi, CJK symbols and punctuation
             0x3041...0x33FF,  // Hiragana, Katakana, Bopomofo, Hangul compatibility Jamo, CJK compatibility
             0x3400...0x4DBF,  // CJK extension A
             0x4E00...0x9FFF,  // CJK unified ideographs
             0xA000...0xA4CF,  // Yi
             0xA960...0xA97F,  // Hangul Jamo extended A
             0xAC00...0xD7A3,  // Hangul syllables
             0xF900...0xFAFF,  // CJK compatibility ideographs
             0xFE10...0xFE19, 0xFE30...0xFE6F,  // vertical forms, CJK compatibility forms, small forms
             0xFF00...0xFF60, 0xFFE0...0xFFE6,  // fullwidth forms
             0x16FE0...0x16FE4, 0x17000...0x18AFF, 0x1B000...0x1B2FF,  // Tangut, Kana supplement
             0x1F004, 0x1F0CF, 0x1F18E, 0x1F191...0x1F19A, 0x1F200...0x1F251,
             0x1F300...0x1F320, 0x1F32D...0x1F335, 0x1F337...0x1F37C, 0x1F37E...0x1F393, 0x1F3A0...0x1F3CA,
             0x1F3CF...0x1F3D3, 0x1F3E0...0x1F3F0, 0x1F3F4, 0x1F3F8...0x1F43E, 0x1F440, 0x1F442...0x1F4FC,
             0x1F4FF...0x1F53D, 0x1F54B...0x1F54E, 0x1F550...0x1F567, 0x1F57A, 0x1F595...0x1F596, 0x1F5A4,
             0x1F5FB...0x1F64F, 0x1F680...0x1F6C5, 0x1F6CC, 0x1F6D0...0x1F6D2, 0x1F6D5...0x1F6D7,
             0x1F6DC...0x1F6DF, 0x1F6EB...0x1F6EC, 0x1F6F4...0x1F6FC, 0x1F7E0...0x1F7EB, 0x1F7F0,
             0x1F90C...0x1F93A, 0x1F93C...0x1F945, 0x1F947...0x1F9FF, 0x1FA70...0x1FAFF,  // emoji
             0x20000...0x2FFFD, 0x30000...0x3FFFD:  // CJK extensions B and later
            return true
        default:
            return false
        }
    }

    /// The longest prefix of `text` that fits in `columns`, and its width.
    public static func prefix(_ text: Substring, fitting columns: Int) -> (Substring, Int) {
        var used = 0
        var end = text.startIndex
        for index in text.indices {
            let w = width(of: text[index])
            if used + w > columns { break }
            used += w
            end = text.index(after: index)
        }
        return (text[text.startIndex..<end], used)
    }

    /// Splits text into lines of at most `columns` columns, at spaces where possible.
    public static func wrap(_ text: String, columns: Int) -> [String] {
        let columns = max(1, columns)
        var lines: [String] = []
        for paragraph in text.split(separator: "\n", omittingEmptySubsequences: false) {
            var rest = Substring(paragraph)
            if rest.isEmpty { lines.append(""); continue }
            while !rest.isEmpty {
                let (head, _) = prefix(rest, fitting: columns)
                if head.endIndex == rest.endIndex { lines.append(String(head)); break }
                var cut = head.endIndex
                if head.isEmpty {
                    cut = rest.index(after: rest.startIndex)  // a wide character in a 1-column window
                } else if let space = head.lastIndex(of: " "), space > head.startIndex {
                    cut = space
                }
                lines.append(String(rest[rest.startIndex..<cut]))
                rest = rest[cut...]
                while rest.first == " " { rest = rest.dropFirst() }
            }
        }
        return lines
    }

    /// Removes control characters (including ESC) from text that came from the network, so it cannot move the cursor
    /// or change the terminal's state. Tabs become spaces.
    public static func sanitize(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x09: out.append(" ")
            case 0x0A: out.append(scalar)
            case 0..<0x20, 0x7F..<0xA0: out.append("\u{FFFD}")
            default: out.append(scalar)
            }
        }
        return String(out)
    }
}
