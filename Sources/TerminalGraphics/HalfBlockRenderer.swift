import ImageBuffer

/// What to do with transparency in text-cell renderers.
public enum Transparency: Sendable, Hashable {
    /// Blend every pixel over this colour.
    case composite(over: RGB)
    /// Pixels with alpha < 128 show the terminal's default background (so the picture sits on the terminal's own
    /// colour); the others are drawn with their colour as is.
    case terminalDefault
}

/// Unicode half blocks: each cell shows two pixels, the top one as the foreground of `▀` and the bottom one as the
/// background. Colours are 24-bit (`ESC[38;2;r;g;bm`) or the 240 xterm colours above the first 16
/// (`ESC[38;5;nm`). Codes are only sent when a colour changes, and every line ends with `ESC[0m`, so a line can be
/// redrawn alone and nothing leaks into the following text.
public struct HalfBlockRenderer: Sendable {
    public enum ColorDepth: Sendable, Hashable {
        case trueColor
        case palette256
    }

    public var depth: ColorDepth
    public var transparency: Transparency
    /// The colours of a 256-colour terminal (`.palette256`).
    public var palette: TerminalPalette
    /// `.palette256` dithers by error diffusion, light (the palette's steps are coarse, so full-strength diffusion
    /// sprinkles far colours over flat areas) and constrained to colours about as near as the nearest one: it breaks
    /// posterised patches up where they meet and keeps PSNR at or above chafa's, which unconstrained diffusion
    /// did not (BENCHMARKS.md, half blocks in 256 colours).
    static let dithering = ErrorDiffusion(strength: 0.75, deadZone: 4, serpentine: true, slack: 1.3)

    public init(depth: ColorDepth = .trueColor, transparency: Transparency = .composite(over: .black),
                palette: TerminalPalette = TerminalPalette()) {
        self.depth = depth
        self.transparency = transparency
        self.palette = palette
    }

    /// One line of bytes per cell row (`(height + 1) / 2` rows; an odd last pixel row is paired with nothing:
    /// transparent, or the composite colour). Lines have no line terminator.
    public func render(_ image: RGBAImage) -> [[UInt8]] {
        let width = image.width
        let height = image.height
        let pens = self.pens(image)
        var lines: [[UInt8]] = []
        lines.reserveCapacity((height + 1) / 2)
        let blankPen = blank.map(pen)
        for top in stride(from: 0, to: height, by: 2) {
            var line = ByteSink(capacity: width * 24)
            var state = PenState()
            for x in 0..<width {
                let upper = pens[top * width + x]
                let lower = top + 1 < height ? pens[(top + 1) * width + x] : blankPen
                let cell: (glyph: Glyph, fg: Pen, bg: Pen)
                switch (upper, lower) {
                case (nil, nil):
                    cell = (.space, state.fg, .terminal)
                case let (u?, nil):
                    cell = (.upper, u, .terminal)
                case let (nil, l?):
                    cell = (.lower, l, .terminal)
                case let (u?, l?):
                    // Same colour twice: a space on that background, so the foreground need not change.
                    cell = u == l ? (.space, state.fg, l) : (.upper, u, l)
                }
                state.move(to: cell.fg, bg: cell.bg, into: &line)
                switch cell.glyph {
                case .space: line.append(0x20)
                case .upper:  // U+2580 in UTF-8
                    line.append(0xE2)
                    line.append(0x96)
                    line.append(0x80)
                case .lower:  // U+2584
                    line.append(0xE2)
                    line.append(0x96)
                    line.append(0x84)
                }
            }
            line.append("\u{1B}[0m")
            lines.append(line.finish())
        }
        return lines
    }

    /// The pen of every pixel, row by row; nil where it is transparent (`.terminalDefault`).
    private func pens(_ image: RGBAImage) -> [Pen?] {
        let count = image.width * image.height
        // Transparency resolved first: composited over its colour, or alpha kept as drawn / not drawn.
        var flat = RGBAImage(width: image.width, height: image.height)
        image.pixels.withUnsafeBufferPointer { buf in
            for i in 0..<count {
                let o = i * 4
                if let c = pixel(buf, width: image.width, x: i % image.width, y: i / image.width) {
                    flat.pixels[o] = c.r
                    flat.pixels[o + 1] = c.g
                    flat.pixels[o + 2] = c.b
                    flat.pixels[o + 3] = 255
                }
            }
        }
        switch depth {
        case .trueColor:
            return (0..<count).map { i in
                flat.pixels[i * 4 + 3] == 0 ? nil : .rgb(RGB(flat.pixels[i * 4], flat.pixels[i * 4 + 1], flat.pixels[i * 4 + 2]))
            }
        case .palette256:
            let colors = palette.colors.map { SIMD3<Float>(Float($0.r), Float($0.g), Float($0.b)) }
            let indices = Self.dithering.indices(flat, palette: colors)
            return indices.map { $0 == SixelEncoder.transparent ? nil : .indexed(palette.indices[Int($0)]) }
        }
    }

    private enum Glyph { case space, upper, lower }

    /// nil: transparent (only with `.terminalDefault`).
    private var blank: RGB? {
        switch transparency {
        case .composite(let over): return over
        case .terminalDefault: return nil
        }
    }

    @inline(__always)
    private func pixel(_ buf: UnsafeBufferPointer<UInt8>, width: Int, x: Int, y: Int) -> RGB? {
        let i = (y * width + x) * 4
        let a = Int(buf[i + 3])
        switch transparency {
        case .terminalDefault:
            return a < 128 ? nil : RGB(buf[i], buf[i + 1], buf[i + 2])
        case .composite(let over):
            if a == 255 { return RGB(buf[i], buf[i + 1], buf[i + 2]) }
            @inline(__always) func mix(_ c: UInt8, _ o: UInt8) -> UInt8 {
                UInt8((Int(c) * a + Int(o) * (255 - a) + 127) / 255)
            }
            return RGB(mix(buf[i], over.r), mix(buf[i + 1], over.g), mix(buf[i + 2], over.b))
        }
    }

    /// The pen of a single colour (the composite colour below an odd last row).
    private func pen(_ c: RGB) -> Pen {
        switch depth {
        case .trueColor: return .rgb(c)
        case .palette256: return .indexed(palette.nearest(c))
        }
    }
}

/// A foreground or background setting.
enum Pen: Hashable {
    case terminal
    case rgb(RGB)
    case indexed(UInt8)
}

/// The colours the terminal currently has, so codes are only sent on change. A line starts at the defaults (the
/// previous line ended with `ESC[0m`).
struct PenState {
    var fg: Pen = .terminal
    var bg: Pen = .terminal

    /// One SGR sequence for whatever changed.
    mutating func move(to newFG: Pen, bg newBG: Pen, into sink: inout ByteSink) {
        let fgChanged = newFG != fg, bgChanged = newBG != bg
        if !fgChanged && !bgChanged { return }
        sink.append("\u{1B}[")
        if fgChanged { PenState.append(newFG, base: 30, into: &sink) }
        if fgChanged && bgChanged { sink.append(0x3B) }
        if bgChanged { PenState.append(newBG, base: 40, into: &sink) }
        sink.append(0x6D)
        fg = newFG
        bg = newBG
    }

    /// 39/49 (default), 38;2;r;g;b / 48;2;r;g;b, or 38;5;n / 48;5;n.
    private static func append(_ pen: Pen, base: Int, into sink: inout ByteSink) {
        switch pen {
        case .terminal:
            sink.appendDecimal(base + 9)
        case .rgb(let c):
            sink.appendDecimal(base + 8)
            sink.append(";2;")
            sink.appendDecimal(Int(c.r))
            sink.append(0x3B)
            sink.appendDecimal(Int(c.g))
            sink.append(0x3B)
            sink.appendDecimal(Int(c.b))
        case .indexed(let n):
            sink.appendDecimal(base + 8)
            sink.append(";5;")
            sink.appendDecimal(Int(n))
        }
    }
}
