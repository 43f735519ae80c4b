import ImageBuffer

/// An encoded preview and the cells it covers.
public struct RenderedPreview: Sendable, Hashable {
    public var bytes: [UInt8]
    public var layout: PreviewLayout
    public var graphics: ResolvedGraphics
}

/// Draws an image preview: decides the mode, lays it out, resamples, encodes.
///
/// Output contract, the same for every mode: drawing starts at column 1 of the cursor's line and covers
/// `layout.rows` lines; afterwards the cursor is at column 1 of the line below the preview. Text modes write lines
/// separated by CR LF (scrolling as text does). Sixel first makes room (CR, `rows` LFs, then back up), so the
/// terminal scrolls before the picture is drawn rather than under it, and one spare line below absorbs terminals
/// that move the cursor past the picture; the cursor is hidden while drawing and saved/restored around the sixel
/// (DECSC/DECRC) because terminals disagree on where a sixel leaves it. A caller must therefore not hold its own
/// DECSC across a preview.
public struct PreviewRenderer: Sendable {
    public var sixelEncoder: SixelEncoder
    /// For blocks and ASCII.
    public var transparency: Transparency

    public init(sixelEncoder: SixelEncoder = SixelEncoder(), transparency: Transparency = .composite(over: .black)) {
        self.sixelEncoder = sixelEncoder
        self.transparency = transparency
    }

    /// The layout a picture of this size will get: for reserving space before the picture is there.
    public func layout(imageWidth: Int, imageHeight: Int, mode: GraphicsMode, capabilities: TerminalCapabilities,
                       maxColumns: Int) -> PreviewLayout? {
        PreviewLayout.make(imageWidth: imageWidth, imageHeight: imageHeight, mode: capabilities.resolve(mode),
                           capabilities: capabilities, maxColumns: maxColumns)
    }

    /// Bytes to write to the terminal (empty for `.none`).
    public func render(image: RGBAImage, mode: GraphicsMode, capabilities: TerminalCapabilities,
                       maxColumns: Int) -> [UInt8] {
        renderPreview(image: image, mode: mode, capabilities: capabilities, maxColumns: maxColumns)?.bytes ?? []
    }

    /// Bytes and layout; nil for `.none`.
    public func renderPreview(image: RGBAImage, mode: GraphicsMode, capabilities: TerminalCapabilities,
                              maxColumns: Int) -> RenderedPreview? {
        let graphics = capabilities.resolve(mode)
        guard let layout = PreviewLayout.make(imageWidth: image.width, imageHeight: image.height, mode: graphics,
                                              capabilities: capabilities, maxColumns: maxColumns) else { return nil }
        let scaled = ImageResize.resize(image, width: layout.pixelWidth, height: layout.pixelHeight)
        var sink = ByteSink(capacity: 4096)
        switch graphics {
        case .none:
            return nil
        case .sixel(let registers):
            var encoder = sixelEncoder
            encoder.maxColors = min(encoder.maxColors, registers)
            let sixel = encoder.encode(scaled, canvasHeight: layout.canvasHeight)
            let rows = layout.rows
            sink.append("\u{1B}[?25l\r")
            for _ in 0..<rows { sink.append(0x0A) }
            sink.appendCSI(rows, final: 0x41)  // CUU: back to the first reserved line
            sink.append("\u{1B}7")
            sink.append(sixel)
            sink.append("\u{1B}8")
            sink.appendCSI(rows, final: 0x42)  // CUD: the spare line below
            sink.append("\u{1B}[?25h")
        case .blocks(let depth):
            let lines = HalfBlockRenderer(depth: depth, transparency: transparency).render(scaled)
            appendLines(lines, into: &sink)
        case .ascii:
            appendLines(AsciiRenderer().render(scaled), into: &sink)
        }
        return RenderedPreview(bytes: sink.finish(), layout: layout, graphics: graphics)
    }

    private func appendLines(_ lines: [[UInt8]], into sink: inout ByteSink) {
        sink.append(0x0D)
        for line in lines {
            sink.append(line)
            sink.append("\r\n")
        }
    }
}
