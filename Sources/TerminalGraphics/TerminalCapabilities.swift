/// How previews should be drawn: the `--graphics` option. `auto` follows the detected capabilities.
public enum GraphicsMode: String, Sendable, CaseIterable {
    case auto, sixel, blocks, ascii, none

    /// Parses a `--graphics` value (case-insensitive); nil for anything else.
    public init?(argument: String) {
        self.init(rawValue: argument.lowercased())
    }
}

/// A decided way of drawing.
public enum ResolvedGraphics: Sendable, Hashable {
    /// Sixel with at most this many colour registers.
    case sixel(colorRegisters: Int)
    case blocks(HalfBlockRenderer.ColorDepth)
    case ascii
    case none
}

/// The terminal's window from TIOCGWINSZ. Pixel fields are 0 where the terminal does not fill them in.
public struct WindowSize: Sendable, Hashable {
    public var columns: Int
    public var rows: Int
    public var pixelWidth: Int
    public var pixelHeight: Int

    public init(columns: Int, rows: Int, pixelWidth: Int = 0, pixelHeight: Int = 0) {
        self.columns = columns
        self.rows = rows
        self.pixelWidth = pixelWidth
        self.pixelHeight = pixelHeight
    }
}

/// What the terminal can show, decided once from the probe answers, the window size and the environment.
public struct TerminalCapabilities: Sendable, Hashable {
    /// Sixel announced in DA1.
    public var sixel: Bool
    /// Sixel colour registers: the XTSMGRAPHICS answer, else 256 (what sixel terminals commonly have).
    public var colorRegisters: Int
    /// Cell size in pixels; `cellSizeKnown` is false when it is the 10x20 guess.
    public var cellWidth: Int
    public var cellHeight: Int
    public var cellSizeKnown: Bool
    public var columns: Int
    public var rows: Int
    /// Palette colours the terminal reported (the first 16, which themes change), by index.
    public var palette: [Int: RGB] = [:]
    /// `COLORTERM` is `truecolor` or `24bit`.
    public var trueColor: Bool
    /// False under `NO_COLOR` (any value but empty) or `TERM=dumb`: then `auto` means ASCII.
    public var colors: Bool
    /// `TERM=dumb`: no escape sequences at all, so not even a probe.
    public var dumb: Bool
    public var insideTmux: Bool

    public static let defaultCellWidth = 10
    public static let defaultCellHeight = 20
    public static let defaultColorRegisters = 256

    public init(sixel: Bool = false, colorRegisters: Int = TerminalCapabilities.defaultColorRegisters,
                cellWidth: Int = TerminalCapabilities.defaultCellWidth,
                cellHeight: Int = TerminalCapabilities.defaultCellHeight, cellSizeKnown: Bool = false,
                columns: Int = 80, rows: Int = 24, trueColor: Bool = false, colors: Bool = true, dumb: Bool = false,
                insideTmux: Bool = false) {
        self.sixel = sixel
        self.colorRegisters = colorRegisters
        self.cellWidth = cellWidth
        self.cellHeight = cellHeight
        self.cellSizeKnown = cellSizeKnown
        self.columns = columns
        self.rows = rows
        self.trueColor = trueColor
        self.colors = colors
        self.dumb = dumb
        self.insideTmux = insideTmux
    }

    /// Decides from what was learnt. `answers` nil: no probe (not a tty, dumb terminal); a probe that timed out
    /// gives answers without DA1 and is treated the same for sixel (no answer, no sixel).
    public static func detect(answers: ProbeAnswers?, window: WindowSize?,
                              environment: [String: String]) -> TerminalCapabilities {
        var caps = TerminalCapabilities()
        let term = environment["TERM"] ?? ""
        caps.dumb = term == "dumb"
        caps.colors = !caps.dumb && (environment["NO_COLOR"] ?? "").isEmpty
        let colorterm = (environment["COLORTERM"] ?? "").lowercased()
        caps.trueColor = colorterm == "truecolor" || colorterm == "24bit"
        caps.insideTmux = !(environment["TMUX"] ?? "").isEmpty

        if let window, window.columns > 0, window.rows > 0 {
            caps.columns = window.columns
            caps.rows = window.rows
        } else {
            // $COLUMNS/$LINES as shells export them, when there is no window to ask.
            if let c = environment["COLUMNS"].flatMap(Int.init), c > 0 { caps.columns = c }
            if let r = environment["LINES"].flatMap(Int.init), r > 0 { caps.rows = r }
        }

        if let answers {
            caps.sixel = answers.announcesSixel
            if let registers = answers.colorRegisters, registers > 0 { caps.colorRegisters = registers }
            caps.palette = answers.palette
        }
        if let cell = cellSize(answers: answers, window: window, columns: caps.columns, rows: caps.rows) {
            caps.cellWidth = cell.width
            caps.cellHeight = cell.height
            caps.cellSizeKnown = true
        }
        return caps
    }

    /// Cell size from up to three sources, cross-checked: the `CSI 16 t` answer, the `CSI 14 t` text area divided
    /// by the grid, and TIOCGWINSZ pixels divided by the grid. Multiplexers and some terminals get one of them
    /// wrong (tmux reports its own idea, or zero pixels), so two that agree win; otherwise the first plausible one
    /// in that order.
    static func cellSize(answers: ProbeAnswers?, window: WindowSize?, columns: Int, rows: Int) -> PixelSize? {
        var candidates: [PixelSize] = []
        if let c = answers?.cellSize { candidates.append(c) }
        if let area = answers?.textAreaSize, columns > 0, rows > 0 {
            candidates.append(PixelSize(width: area.width / columns, height: area.height / rows))
        }
        if let w = window, w.columns > 0, w.rows > 0, w.pixelWidth > 0, w.pixelHeight > 0 {
            candidates.append(PixelSize(width: w.pixelWidth / w.columns, height: w.pixelHeight / w.rows))
        }
        let plausible = candidates.filter(isPlausible)
        for (i, a) in plausible.enumerated() {
            for b in plausible[(i + 1)...] where agree(a, b) { return a }
        }
        return plausible.first
    }

    /// Sizes real fonts have: 2...64 px wide, 4...128 px tall, and taller than wide but not by more than 4x.
    static func isPlausible(_ s: PixelSize) -> Bool {
        (2...64).contains(s.width) && (4...128).contains(s.height) && s.height >= s.width && s.height <= 4 * s.width
    }

    /// Within a pixel, or 10% (area reports may include padding).
    static func agree(_ a: PixelSize, _ b: PixelSize) -> Bool {
        func close(_ x: Int, _ y: Int) -> Bool { abs(x - y) <= max(1, max(x, y) / 10) }
        return close(a.width, b.width) && close(a.height, b.height)
    }

    /// The way to draw for a requested mode. Explicit modes are obeyed (blocks still pick 24-bit or 256 colours);
    /// `auto` takes sixel when announced and the cell size is known (the layout needs it), else colour blocks, else
    /// ASCII when colours are unwanted. Inside tmux, sixel needs tmux's own DA1 to announce it (tmux built with
    /// sixel support does): without it tmux answers `CSI ? 1 ; 2 c` and previews fall back to blocks.
    public func resolve(_ mode: GraphicsMode) -> ResolvedGraphics {
        let registers = min(256, max(1, colorRegisters))
        let depth: HalfBlockRenderer.ColorDepth = trueColor ? .trueColor : .palette256
        switch mode {
        case .none: return .none
        case .ascii: return .ascii
        case .blocks: return .blocks(depth)
        case .sixel: return .sixel(colorRegisters: registers)
        case .auto:
            if dumb || !colors { return .ascii }
            if sixel && cellSizeKnown { return .sixel(colorRegisters: registers) }
            return .blocks(depth)
        }
    }
}
