import ImageBuffer
import Testing
@testable import TerminalGraphics

@Suite("Layout and the preview façade")
struct LayoutAndPreviewTests {
    static func caps(columns: Int = 80, rows: Int = 24, cell: (Int, Int) = (10, 20), sixel: Bool = true,
                     trueColor: Bool = true) -> TerminalCapabilities {
        TerminalCapabilities(sixel: sixel, cellWidth: cell.0, cellHeight: cell.1, cellSizeKnown: true,
                             columns: columns, rows: rows, trueColor: trueColor)
    }

    @Test("sixel: fits a third of the height, whole bands, rows padded, aspect kept")
    func sixelLayout() throws {
        // 320x200 in 10x20 cells on 80x24: at most 8 rows = 160 px, bands floor to 156.
        let l = try #require(PreviewLayout.make(imageWidth: 320, imageHeight: 200, mode: .sixel(colorRegisters: 256),
                                                capabilities: Self.caps(), maxColumns: 80))
        #expect(l.pixelHeight == 156)
        #expect(l.pixelWidth == 250, "320 * 156 / 200 = 249.6")
        #expect(l.rows == 8 && l.columns == 25)
        #expect(l.canvasHeight == 156 && l.canvasHeight % 6 == 0)
        #expect(l.canvasHeight <= l.rows * 20 && l.canvasHeight > (l.rows - 1) * 20, "covers its rows exactly")

        // Tall terminal: no enlargement beyond the source.
        let big = PreviewLayout.sixel(imageWidth: 320, imageHeight: 200, cellWidth: 10, cellHeight: 20,
                                      maxColumns: 200, maxRows: 100)
        // 200 px is exactly 10 rows but not whole bands: shrunk to 198 rather than taking an 11th row.
        #expect(big.pixelWidth == 317 && big.pixelHeight == 198)
        #expect(big.rows == 10 && big.columns == 32)
        #expect(big.canvasHeight == 198)

        // Width-limited: 16 columns of 10 px.
        let narrow = PreviewLayout.sixel(imageWidth: 320, imageHeight: 200, cellWidth: 10, cellHeight: 20,
                                         maxColumns: 16, maxRows: 100)
        #expect(narrow.pixelWidth == 154 && narrow.pixelHeight == 96 && narrow.columns == 16)
        #expect(narrow.rows == 5 && narrow.canvasHeight == 96)
        // Ends mid-row: padded down to the row's last band.
        let mid = PreviewLayout.sixel(imageWidth: 100, imageHeight: 50, cellWidth: 10, cellHeight: 20,
                                      maxColumns: 80, maxRows: 10)
        #expect(mid.pixelHeight == 50 && mid.rows == 3 && mid.canvasHeight == 60)

        // Odd cell height: every padded raster is whole bands, within its rows, and at least the picture.
        for ch in [13, 15, 17, 19, 23] {
            for h in [1, 7, 50, 99, 200] {
                let x = PreviewLayout.sixel(imageWidth: 300, imageHeight: h, cellWidth: 8, cellHeight: ch,
                                            maxColumns: 100, maxRows: 12)
                #expect(x.canvasHeight >= x.pixelHeight)
                #expect(x.canvasHeight <= x.rows * ch, "ch \(ch) h \(h)")
                #expect(x.canvasHeight % 6 == 0 || x.canvasHeight < 6)
                #expect(x.rows <= 12)
            }
        }
    }

    @Test("blocks and ASCII: cell aspect, third of the height, no enlargement")
    func textLayout() throws {
        // 320x200 on 80x24 with 10x20 cells: rows capped at 8; on screen 2:1 cells → columns = 8 / (200/320 * 0.5).
        let blocks = try #require(PreviewLayout.make(imageWidth: 320, imageHeight: 200, mode: .blocks(.trueColor),
                                                     capabilities: Self.caps(), maxColumns: 80))
        #expect(blocks.rows == 8)
        #expect(blocks.columns == 26, "8 rows / 0.3125 = 25.6")
        #expect(blocks.pixelWidth == 26 && blocks.pixelHeight == 16)

        let wide = PreviewLayout.cells(imageWidth: 320, imageHeight: 200, cellWidth: 10, cellHeight: 20,
                                       maxColumns: 40, maxRows: 100, pixelsPerRow: 2)
        #expect(wide.columns == 40 && wide.rows == 13, "40 * 0.3125 = 12.5")

        let tiny = PreviewLayout.cells(imageWidth: 6, imageHeight: 4, cellWidth: 10, cellHeight: 20,
                                       maxColumns: 80, maxRows: 100, pixelsPerRow: 2)
        #expect(tiny.columns == 6 && tiny.rows == 2 && tiny.pixelHeight == 4, "no more cells than pixels")

        let ascii = try #require(PreviewLayout.make(imageWidth: 320, imageHeight: 200, mode: .ascii,
                                                    capabilities: Self.caps(columns: 60, rows: 90), maxColumns: 50))
        #expect(ascii.columns == 50 && ascii.rows == 16 && ascii.pixelHeight == 16)

        #expect(PreviewLayout.make(imageWidth: 320, imageHeight: 200, mode: .none, capabilities: Self.caps(),
                                   maxColumns: 80) == nil)
    }

    @Test("façade, sixel: cursor hidden, room made, DECSC/DECRC, sixel of the layout's size")
    func previewSixel() throws {
        let image = TestSupport.syntheticPhoto(width: 320, height: 200)
        let renderer = PreviewRenderer()
        let preview = try #require(renderer.renderPreview(image: image, mode: .auto, capabilities: Self.caps(),
                                                          maxColumns: 80))
        #expect(preview.graphics == .sixel(colorRegisters: 256))
        let text = String(decoding: preview.bytes, as: UTF8.self)
        let rows = preview.layout.rows
        let prefix = "\u{1B}[?25l\r" + String(repeating: "\n", count: rows) + "\u{1B}[\(rows)A\u{1B}7"
        #expect(text.hasPrefix(prefix))
        #expect(text.hasSuffix("\u{1B}8\u{1B}[\(rows)B\u{1B}[?25h"))
        let start = prefix.utf8.count
        let end = preview.bytes.count - "\u{1B}8\u{1B}[\(rows)B\u{1B}[?25h".utf8.count
        let decoded = try SixelDecoder.decode(Array(preview.bytes[start..<end]))
        #expect(decoded.rasterWidth == preview.layout.pixelWidth)
        #expect(decoded.rasterHeight == preview.layout.canvasHeight)
        #expect(decoded.drawnHeight == preview.layout.pixelHeight)
        #expect(preview.layout.pixelHeight <= 156, "a third of 24 rows of 20 px")
        // The picture survives the resize: compare against a plain resize of the source.
        let expected = ImageResize.resize(image, width: preview.layout.pixelWidth,
                                          height: preview.layout.pixelHeight)
        var cropped = RGBAImage(width: expected.width, height: expected.height)
        cropped.pixels = Array(decoded.image.pixels.prefix(expected.width * expected.height * 4))
        #expect(TestSupport.psnr(expected, cropped) > 30)
        #expect(renderer.render(image: image, mode: .auto, capabilities: Self.caps(), maxColumns: 80) == preview.bytes)
        #expect(renderer.layout(imageWidth: 320, imageHeight: 200, mode: .auto, capabilities: Self.caps(),
                                maxColumns: 80) == preview.layout)
    }

    @Test("façade, registers: the terminal's count limits the palette")
    func previewRegisters() throws {
        var caps = Self.caps()
        caps.colorRegisters = 16
        let bytes = PreviewRenderer().render(image: TestSupport.syntheticPhoto(width: 100, height: 60), mode: .sixel,
                                             capabilities: caps, maxColumns: 80)
        let text = String(decoding: bytes, as: UTF8.self)
        let start = try #require(text.range(of: "\u{1B}P"))
        let stop = try #require(text.range(of: "\u{1B}\\"))
        let decoded = try SixelDecoder.decode(Array(text[start.lowerBound..<stop.upperBound].utf8))
        #expect(decoded.palette.count <= 16 && decoded.palette.count > 8)
    }

    @Test("façade, blocks and ASCII: CR LF separated lines, as many as the layout says")
    func previewText() throws {
        let image = TestSupport.syntheticPhoto(width: 64, height: 40)
        let renderer = PreviewRenderer()
        let noSixel = Self.caps(sixel: false, trueColor: false)
        let blocks = try #require(renderer.renderPreview(image: image, mode: .auto, capabilities: noSixel,
                                                         maxColumns: 20))
        #expect(blocks.graphics == .blocks(.palette256))
        #expect(blocks.layout.columns == 20 && blocks.layout.rows == 6)
        let lines = String(decoding: blocks.bytes, as: UTF8.self).dropFirst().split(separator: "\r\n",
                                                                                    omittingEmptySubsequences: false)
        #expect(blocks.bytes.first == 0x0D)
        #expect(lines.count == blocks.layout.rows + 1 && lines.last == "", "every line ends with CR LF")
        for line in lines.dropLast() {
            let screen = try CellScreen.parse(Array(line.utf8))
            #expect(screen.cells.count == 20)
        }
        let ascii = renderer.render(image: image, mode: .ascii, capabilities: noSixel, maxColumns: 30)
        #expect(ascii.allSatisfy { $0 == 0x0D || $0 == 0x0A || (0x20..<0x7F).contains($0) }, "plain ASCII")
        #expect(renderer.render(image: image, mode: .none, capabilities: noSixel, maxColumns: 30).isEmpty)
    }

    @Test("area-average resize keeps means and transparency")
    func resize() {
        // Halving a 2x2 checker gives its mean; transparent pixels do not darken their neighbours.
        var image = RGBAImage(width: 4, height: 2)
        image.pixels = [255, 0, 0, 255, 0, 0, 255, 255, 10, 10, 10, 0, 10, 10, 10, 0,
                        255, 0, 0, 255, 0, 0, 255, 255, 10, 10, 10, 0, 10, 10, 10, 0]
        let half = ImageResize.resize(image, width: 2, height: 1)
        #expect(Array(half.pixels[0..<4]) == [128, 0, 128, 255])
        #expect(half.pixels[7] == 0, "fully transparent stays transparent")
        var edge = RGBAImage(width: 2, height: 1)
        edge.pixels = [200, 100, 50, 255, 0, 0, 0, 0]
        let one = ImageResize.resize(edge, width: 1, height: 1)
        #expect(Array(one.pixels) == [200, 100, 50, 128], "colour kept, alpha halved")
        let same = ImageResize.resize(image, width: 4, height: 2)
        #expect(same == image)
    }
}
