import ImageBuffer
import Testing
@testable import TerminalGraphics

@Suite("Half blocks and ASCII")
struct TextRendererTests {
    /// 4 x 5 pixels, every one different; the odd last row pairs with the background.
    static func sample() -> RGBAImage {
        var image = RGBAImage(width: 4, height: 5)
        for y in 0..<5 {
            for x in 0..<4 {
                let o = (y * 4 + x) * 4
                image.pixels[o] = UInt8(x * 60 + 10)
                image.pixels[o + 1] = UInt8(y * 50 + 5)
                image.pixels[o + 2] = UInt8((x + y) * 20)
                image.pixels[o + 3] = 255
            }
        }
        return image
    }

    static func rgb(_ image: RGBAImage, _ x: Int, _ y: Int) -> CellScreen.Color {
        let o = (y * image.width + x) * 4
        return .rgb(image.pixels[o], image.pixels[o + 1], image.pixels[o + 2])
    }

    @Test("24-bit: every cell shows its two pixels")
    func trueColorCells() throws {
        let image = Self.sample()
        let lines = HalfBlockRenderer(depth: .trueColor).render(image)
        #expect(lines.count == 3)
        for (row, line) in lines.enumerated() {
            #expect(line.suffix(4) == Array("\u{1B}[0m".utf8), "line \(row) ends with a reset")
            let screen = try CellScreen.parse(line)
            #expect(screen.cells.count == 4)
            #expect(screen.fg == .terminal && screen.bg == .terminal, "nothing leaks past the line")
            for x in 0..<4 {
                let (top, bottom) = CellScreen.pixels(of: screen.cells[x])
                #expect(top == Self.rgb(image, x, row * 2), "cell \(x),\(row) top")
                let below = row * 2 + 1 < 5 ? Self.rgb(image, x, row * 2 + 1) : .rgb(0, 0, 0)
                #expect(bottom == below, "cell \(x),\(row) bottom")
            }
        }
    }

    @Test("256 colours: the 240 above the first 16, nearest")
    func palette256Cells() throws {
        // Known answers: cube colours map to themselves, a mid grey to the grey ramp, pure colours to the cube.
        var image = RGBAImage(width: 3, height: 2)
        let top: [(UInt8, UInt8, UInt8)] = [(95, 135, 175), (128, 128, 128), (255, 0, 0)]
        let bottom: [(UInt8, UInt8, UInt8)] = [(0, 0, 0), (238, 238, 238), (1, 254, 3)]
        for x in 0..<3 {
            image.pixels[x * 4 ..< x * 4 + 4] = [top[x].0, top[x].1, top[x].2, 255]
            image.pixels[(3 + x) * 4 ..< (3 + x) * 4 + 4] = [bottom[x].0, bottom[x].1, bottom[x].2, 255]
        }
        let lines = HalfBlockRenderer(depth: .palette256).render(image)
        #expect(lines.count == 1)
        let screen = try CellScreen.parse(lines[0])
        let expected: [(UInt8, UInt8)] = [(67, 16), (244, 255), (196, 46)]
        for x in 0..<3 {
            let (t, b) = CellScreen.pixels(of: screen.cells[x])
            #expect(t == .indexed(expected[x].0), "cell \(x) top: \(t)")
            #expect(b == .indexed(expected[x].1), "cell \(x) bottom: \(b)")
        }
        #expect(!String(decoding: lines[0], as: UTF8.self).contains(";2;"), "no 24-bit codes")
    }

    @Test("colour codes only when a colour changes")
    func codesOnlyOnChange() throws {
        // 8 identical cells (top red, bottom blue), then 8 of a single colour.
        var image = RGBAImage(width: 16, height: 2)
        for x in 0..<16 {
            let lower: [UInt8] = x < 8 ? [0, 0, 255, 255] : [0, 255, 0, 255]
            let upper: [UInt8] = x < 8 ? [255, 0, 0, 255] : [0, 255, 0, 255]
            image.pixels[x * 4 ..< x * 4 + 4] = ArraySlice(upper)
            image.pixels[(16 + x) * 4 ..< (16 + x) * 4 + 4] = ArraySlice(lower)
        }
        let line = HalfBlockRenderer().render(image)[0]
        let screen = try CellScreen.parse(line)
        #expect(screen.sgrCount == 3, "one for red/blue, one for green, one reset: \(screen.sgrCount)")
        #expect(screen.cells.count == 16)
        #expect(CellScreen.pixels(of: screen.cells[12]) == (.rgb(0, 255, 0), .rgb(0, 255, 0)))
        #expect(line.count < 16 * 3 + 60, "\(line.count) bytes")
    }

    @Test("transparency: composite over a colour, or the terminal's default colours")
    func transparency() throws {
        var image = RGBAImage(width: 3, height: 2)  // all transparent
        image.pixels[4 ..< 8] = [200, 100, 50, 255]  // (1,0) opaque top
        image.pixels[(3 + 2) * 4 ..< (3 + 2) * 4 + 4] = [10, 20, 30, 255]  // (2,1) opaque bottom
        image.pixels[0 ..< 4] = [200, 100, 50, 128]  // (0,0) half transparent

        let over = try CellScreen.parse(HalfBlockRenderer(transparency: .composite(over: RGB(0, 0, 255)))
            .render(image)[0])
        #expect(CellScreen.pixels(of: over.cells[0]).top == .rgb(100, 50, 152))
        #expect(CellScreen.pixels(of: over.cells[0]).bottom == .rgb(0, 0, 255))
        #expect(CellScreen.pixels(of: over.cells[1]) == (.rgb(200, 100, 50), .rgb(0, 0, 255)))

        let terminal = try CellScreen.parse(HalfBlockRenderer(transparency: .terminalDefault).render(image)[0])
        #expect(terminal.cells[0].glyph == "\u{2580}", "alpha 128 counts as drawn")
        #expect(CellScreen.pixels(of: terminal.cells[0]) == (.rgb(200, 100, 50), .terminal))
        #expect(CellScreen.pixels(of: terminal.cells[1]) == (.rgb(200, 100, 50), .terminal))
        #expect(terminal.cells[2].glyph == "\u{2584}", "only the bottom drawn: lower half block")
        #expect(CellScreen.pixels(of: terminal.cells[2]) == (.terminal, .rgb(10, 20, 30)))
        let empty = try CellScreen.parse(HalfBlockRenderer(transparency: .terminalDefault)
            .render(RGBAImage(width: 2, height: 2))[0])
        #expect(empty.cells.allSatisfy { $0.glyph == " " && $0.bg == .terminal })
    }

    @Test("xterm palette: the 240 above the first 16, and the first 16 only where the terminal reported them")
    func ansi256() {
        let standard = TerminalPalette()
        #expect(standard.indices.count == 240 && standard.indices.first == 16)
        #expect(standard.nearest(RGB(95, 135, 175)) == 67, "a cube colour is itself")
        #expect(standard.nearest(RGB(128, 128, 128)) == 244, "mid grey: the grey ramp")
        #expect(standard.nearest(RGB(205, 0, 0)) == 160, "without reports, never a system colour")
        let reported = TerminalPalette(reported: [1: RGB(205, 0, 0), 9: RGB(255, 0, 0)])
        #expect(reported.indices.count == 242)
        #expect(reported.nearest(RGB(205, 0, 0)) == 1, "the reported red matches exactly")
        #expect(Ansi256.color(of: 231) == RGB(255, 255, 255))
        #expect(Ansi256.color(of: 232) == RGB(8, 8, 8))
    }

    @Test("ASCII ramp: dark to light, no escape codes")
    func ascii() {
        var image = RGBAImage(width: 4, height: 2)
        let levels: [UInt8] = [0, 90, 180, 255]
        for x in 0..<4 {
            image.pixels[x * 4 ..< x * 4 + 4] = [levels[x], levels[x], levels[x], 255]
        }
        // second row transparent: blank
        let lines = AsciiRenderer().render(image)
        #expect(lines.count == 2)
        #expect(String(decoding: lines[0], as: UTF8.self) == " -#@")
        #expect(String(decoding: lines[1], as: UTF8.self) == "    ")
        let inverted = AsciiRenderer(invert: true).render(image)
        #expect(String(decoding: inverted[0], as: UTF8.self) == "@*: ")
    }
}
