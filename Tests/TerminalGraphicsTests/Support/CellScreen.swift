/// A minimal terminal model for text-cell output: applies SGR colour codes and records, per printed character, the
/// character and the foreground/background in effect. Anything but SGR, printable text and the two half blocks is
/// rejected, so stray bytes in the renderer's output fail the tests.
struct CellScreen {
    enum Color: Equatable, CustomStringConvertible {
        case terminal
        case rgb(UInt8, UInt8, UInt8)
        case indexed(UInt8)

        var description: String {
            switch self {
            case .terminal: return "default"
            case let .rgb(r, g, b): return "rgb(\(r),\(g),\(b))"
            case let .indexed(n): return "idx(\(n))"
            }
        }
    }

    struct Cell: Equatable {
        var glyph: Character
        var fg: Color
        var bg: Color
    }

    struct ParseError: Error, CustomStringConvertible {
        var description: String
    }

    var cells: [Cell] = []
    var fg = Color.terminal
    var bg = Color.terminal
    /// SGR sequences seen.
    var sgrCount = 0

    /// Parses one line of renderer output.
    static func parse(_ bytes: [UInt8]) throws -> CellScreen {
        var screen = CellScreen()
        let text = Array(String(decoding: bytes, as: UTF8.self).unicodeScalars)
        var i = 0
        while i < text.count {
            let s = text[i]
            if s == "\u{1B}" {
                guard i + 1 < text.count, text[i + 1] == "[" else { throw ParseError(description: "ESC not CSI") }
                var j = i + 2
                var params = ""
                while j < text.count, ("0"..."9").contains(text[j]) || text[j] == ";" {
                    params.unicodeScalars.append(text[j])
                    j += 1
                }
                guard j < text.count, text[j] == "m" else { throw ParseError(description: "not SGR at \(i)") }
                try screen.apply(params.split(separator: ";", omittingEmptySubsequences: false).map { Int($0) ?? -1 })
                screen.sgrCount += 1
                i = j + 1
            } else if s == "\u{2580}" || s == "\u{2584}" || (s.value >= 0x20 && s.value < 0x7F) {
                screen.cells.append(Cell(glyph: Character(s), fg: screen.fg, bg: screen.bg))
                i += 1
            } else {
                throw ParseError(description: "unexpected character U+\(String(s.value, radix: 16))")
            }
        }
        return screen
    }

    private mutating func apply(_ p: [Int]) throws {
        var k = 0
        while k < p.count {
            switch p[k] {
            case 0:
                fg = .terminal
                bg = .terminal
                k += 1
            case 39:
                fg = .terminal
                k += 1
            case 49:
                bg = .terminal
                k += 1
            case 38, 48:
                let color: Color
                if k + 4 < p.count, p[k + 1] == 2 {
                    color = .rgb(UInt8(p[k + 2]), UInt8(p[k + 3]), UInt8(p[k + 4]))
                    if p[k] == 38 { fg = color } else { bg = color }
                    k += 5
                } else if k + 2 < p.count, p[k + 1] == 5 {
                    color = .indexed(UInt8(p[k + 2]))
                    if p[k] == 38 { fg = color } else { bg = color }
                    k += 3
                } else {
                    throw ParseError(description: "bad extended colour \(p)")
                }
            default:
                throw ParseError(description: "unexpected SGR \(p)")
            }
        }
    }

    /// The two pixel colours a cell shows (top, bottom) as a terminal would paint them.
    static func pixels(of cell: Cell) -> (top: Color, bottom: Color) {
        switch cell.glyph {
        case "\u{2580}": return (cell.fg, cell.bg)
        case "\u{2584}": return (cell.bg, cell.fg)
        default: return (cell.bg, cell.bg)
        }
    }
}
