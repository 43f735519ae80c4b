import ImageBuffer

/// A preview ready to draw, and the cells it covers.
public struct RenderedPreview: Sendable {
    public enum Content: Sendable {
        /// Drawn as a graphic; a screen can redraw it, or a band of its rows, from the quantised picture.
        case sixel(SixelPicture)
        /// One line of bytes per text row (half blocks or ASCII), each ending with the attributes reset.
        case text([[UInt8]])
    }

    public var content: Content
    public var layout: PreviewLayout
    public var graphics: ResolvedGraphics

    /// Bytes that draw the preview at the cursor, as `chat-client preview` prints it (the contract below).
    public var bytes: [UInt8] {
        var sink = ByteSink(capacity: 4096)
        switch content {
        case .sixel(let picture):
            let rows = layout.rows
            sink.append("\u{1B}[?25l\r")
            for _ in 0..<rows { sink.append(0x0A) }
            sink.appendCSI(rows, final: 0x41)  // CUU: back to the first reserved line
            sink.append("\u{1B}7")
            sink.append(picture.sixel())
            sink.append("\u{1B}8")
            sink.appendCSI(rows, final: 0x42)  // CUD: the spare line below
            sink.append("\u{1B}[?25h")
        case .text(let lines):
            sink.append(0x0D)
            for line in lines {
                sink.append(line)
                sink.append("\r\n")
            }
        }
        return sink.finish()
    }
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
        let content: RenderedPreview.Content
        switch graphics {
        case .none:
            return nil
        case .sixel(let registers):
            var encoder = sixelEncoder
            encoder.maxColors = min(encoder.maxColors, registers)
            content = .sixel(encoder.picture(scaled, canvasHeight: layout.canvasHeight))
        case .blocks(let depth):
            content = .text(HalfBlockRenderer(depth: depth, transparency: transparency,
                                              palette: TerminalPalette(reported: capabilities.palette)).render(scaled))
        case .ascii:
            content = .text(AsciiRenderer().render(scaled))
        }
        return RenderedPreview(content: content, layout: layout, graphics: graphics)
    }
}
