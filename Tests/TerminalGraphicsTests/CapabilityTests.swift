import Testing
@testable import TerminalGraphics

@Suite("Probe answers and capability decisions")
struct CapabilityTests {
    static func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

    /// What `xterm -ti vt340` answers to the whole batch (cell 20x10, 80x24 of them, 1024 registers).
    static let xtermVT340 = bytes("\u{1B}[6;20;10t\u{1B}[4;480;800t\u{1B}[?1;0;1024S\u{1B}[?63;1;2;4;6;9;15;16;22;28c")
    /// tmux without sixel: DA1 answered by tmux itself, nothing else.
    static let tmux = bytes("\u{1B}[?1;2c")

    @Test("the request: five queries, DA1 last")
    func request() {
        let palette = "\u{1B}]4;" + (0..<16).map { "\($0);?" }.joined(separator: ";") + "\u{1B}\\"
        #expect(String(decoding: TerminalProbe.request, as: UTF8.self)
                == "\u{1B}[16t\u{1B}[14t\u{1B}[?1;1;0S" + palette + "\u{1B}[c")
    }

    @Test("palette reports: xterm's 4-digit and 2-digit channels, BEL or ST; other OSCs dropped, never keys")
    func paletteAnswers() {
        let bytes = Array(("\u{1B}]4;1;rgb:cdcd/0000/0000\u{1B}\\\u{1B}]4;7;rgb:e5/e5/e5\u{07}\u{1B}]11;rgb:0000/0000/0000\u{07}"
            + "x\u{1B}]4;300;rgb:ff/ff/ff\u{07}\u{1B}]4;2;rgb:zz/00/00\u{07}\u{1B}[?63;4c").utf8)
        let answers = ProbeAnswers.parse(bytes)
        #expect(answers.palette == [1: RGB(205, 0, 0), 7: RGB(229, 229, 229)])
        #expect(answers.otherInput == Array("x".utf8))
        #expect(answers.isComplete)
        // An answer cut off at the end waits for the rest rather than becoming input.
        let cut = ProbeAnswers.parse(Array("\u{1B}]4;1;rgb:cd".utf8))
        #expect(cut.palette.isEmpty && cut.otherInput.isEmpty)
        // The reported colours reach the capabilities.
        let caps = TerminalCapabilities.detect(answers: answers, window: nil, environment: ["TERM": "xterm-256color"])
        #expect(caps.palette[1] == RGB(205, 0, 0))
    }

    @Test("xterm -ti vt340: sixel, registers, cell size")
    func xterm() {
        let answers = ProbeAnswers.parse(Self.xtermVT340)
        #expect(answers.isComplete)
        #expect(answers.announcesSixel)
        #expect(answers.deviceAttributes == [63, 1, 2, 4, 6, 9, 15, 16, 22, 28])
        #expect(answers.cellSize == PixelSize(width: 10, height: 20))
        #expect(answers.textAreaSize == PixelSize(width: 800, height: 480))
        #expect(answers.colorRegisters == 1024)
        #expect(answers.otherInput.isEmpty)

        let caps = TerminalCapabilities.detect(answers: answers, window: WindowSize(columns: 80, rows: 24),
                                               environment: ["TERM": "xterm"])
        #expect(caps.sixel)
        #expect(caps.cellSizeKnown && caps.cellWidth == 10 && caps.cellHeight == 20)
        #expect(caps.resolve(.auto) == .sixel(colorRegisters: 256), "registers capped at the encoder's 256")
    }

    @Test("tmux's own DA1 (?1;2c) means no sixel: blocks")
    func tmux() {
        let answers = ProbeAnswers.parse(Self.tmux)
        #expect(answers.isComplete)
        #expect(!answers.announcesSixel)
        #expect(answers.deviceAttributes == [1, 2])
        let caps = TerminalCapabilities.detect(
            answers: answers, window: WindowSize(columns: 120, rows: 40, pixelWidth: 0, pixelHeight: 0),
            environment: ["TERM": "tmux-256color", "TMUX": "/tmp/tmux-0/default,1234,0", "COLORTERM": "truecolor"])
        #expect(caps.insideTmux)
        #expect(!caps.sixel)
        #expect(!caps.cellSizeKnown, "no answers and zero pixels: a guess")
        #expect(caps.resolve(.auto) == .blocks(.trueColor))
        // tmux built with sixel support announces it in its own DA1.
        let sixelTmux = TerminalCapabilities.detect(
            answers: ProbeAnswers.parse(Self.bytes("\u{1B}[6;18;9t\u{1B}[?1;2;4c")),
            window: WindowSize(columns: 120, rows: 40), environment: ["TMUX": "x"])
        #expect(sixelTmux.resolve(.auto) == .sixel(colorRegisters: 256))
    }

    @Test("VT132's class 4 is not sixel; sixel needs a 4 among the attributes")
    func classIsNotAttribute() {
        #expect(!ProbeAnswers.parse(Self.bytes("\u{1B}[?4;6c")).announcesSixel)
        #expect(ProbeAnswers.parse(Self.bytes("\u{1B}[?62;4;22c")).announcesSixel)
        #expect(!ProbeAnswers.parse(Self.bytes("\u{1B}[?62;14;22c")).announcesSixel)
    }

    @Test("XTSMGRAPHICS: success value used, failure ignored")
    func registers() {
        let ok = ProbeAnswers.parse(Self.bytes("\u{1B}[?1;0;16S\u{1B}[?63;4c"))
        #expect(ok.colorRegisters == 16)
        let caps = TerminalCapabilities.detect(answers: ok, window: WindowSize(columns: 80, rows: 24, pixelWidth: 640,
                                                                                pixelHeight: 384), environment: [:])
        #expect(caps.resolve(.auto) == .sixel(colorRegisters: 16))
        let failed = ProbeAnswers.parse(Self.bytes("\u{1B}[?1;3;0S\u{1B}[?63;4c"))
        #expect(failed.colorRegisters == nil)
        #expect(failed.otherInput.isEmpty, "a failure answer is still an answer")
        #expect(TerminalCapabilities.detect(answers: failed, window: nil, environment: [:]).colorRegisters == 256)
    }

    @Test("timeout: partial or no answers give defaults")
    func timeout() {
        let none = ProbeAnswers.parse([])
        #expect(!none.isComplete)
        let caps = TerminalCapabilities.detect(answers: none, window: nil, environment: ["TERM": "xterm-256color"])
        #expect(!caps.sixel && !caps.cellSizeKnown)
        #expect(caps.cellWidth == 10 && caps.cellHeight == 20 && caps.colorRegisters == 256)
        #expect(caps.columns == 80 && caps.rows == 24)
        #expect(caps.resolve(.auto) == .blocks(.palette256))

        // Cut off in the middle of the cell-size answer: what arrived whole is used, the rest dropped.
        let partial = ProbeAnswers.parse(Self.bytes("\u{1B}[4;480;800t\u{1B}[6;2"))
        #expect(!partial.isComplete)
        #expect(partial.textAreaSize == PixelSize(width: 800, height: 480))
        #expect(partial.cellSize == nil)
        #expect(partial.otherInput.isEmpty)
        // No DA1, no sixel, even with the rest known.
        let noDA = TerminalCapabilities.detect(answers: partial, window: WindowSize(columns: 80, rows: 24),
                                               environment: [:])
        #expect(!noDA.sixel && noDA.cellSizeKnown)
    }

    @Test("keys typed during the probe are kept, in order")
    func otherInput() {
        let mixed = Self.bytes("ab\u{1B}[6;16;8tc\u{1B}[A\u{1B}OP\u{1B}[?62;4cd")
        let answers = ProbeAnswers.parse(mixed)
        #expect(answers.cellSize == PixelSize(width: 8, height: 16))
        #expect(answers.isComplete)
        #expect(answers.otherInput == Self.bytes("abc\u{1B}[A\u{1B}OPd"))
        // 8-bit CSI works too.
        let eightBit = ProbeAnswers.parse([0x9B] + Self.bytes("?62;4c"))
        #expect(eightBit.announcesSixel)
    }

    @Test("cell size cross-check: two agreeing sources beat a wrong one")
    func cellSizeCrossCheck() {
        // The 16t answer is wrong (as multiplexers do); 14t area / grid and TIOCGWINSZ agree on 9x18.
        let answers = ProbeAnswers.parse(Self.bytes("\u{1B}[6;8;8t\u{1B}[4;720;900t\u{1B}[?62;4c"))
        let window = WindowSize(columns: 100, rows: 40, pixelWidth: 900, pixelHeight: 720)
        let caps = TerminalCapabilities.detect(answers: answers, window: window, environment: [:])
        #expect(caps.cellWidth == 9 && caps.cellHeight == 18)
        // Only TIOCGWINSZ: used.
        let onlyWindow = TerminalCapabilities.detect(answers: ProbeAnswers.parse(Self.bytes("\u{1B}[?62;4c")),
                                                     window: window, environment: [:])
        #expect(onlyWindow.cellSizeKnown && onlyWindow.cellWidth == 9)
        // Implausible answers (0 pixels, absurd sizes) are ignored.
        let absurd = TerminalCapabilities.detect(answers: ProbeAnswers.parse(Self.bytes("\u{1B}[6;0;0t\u{1B}[?1;2c")),
                                                 window: WindowSize(columns: 80, rows: 24, pixelWidth: 80,
                                                                    pixelHeight: 24), environment: [:])
        #expect(!absurd.cellSizeKnown)
        #expect(absurd.cellWidth == 10 && absurd.cellHeight == 20)
        // A lone 16t answer, plausible: used.
        let single = TerminalCapabilities.detect(answers: ProbeAnswers.parse(Self.bytes("\u{1B}[6;17;8t\u{1B}[?1c")),
                                                 window: nil, environment: [:])
        #expect(single.cellSizeKnown && single.cellWidth == 8 && single.cellHeight == 17)
    }

    @Test("environment: NO_COLOR, TERM=dumb, COLORTERM, and explicit modes")
    func environment() {
        let sixelTerminal = ProbeAnswers.parse(Self.xtermVT340)
        let window = WindowSize(columns: 80, rows: 24)
        func caps(_ env: [String: String]) -> TerminalCapabilities {
            TerminalCapabilities.detect(answers: sixelTerminal, window: window, environment: env)
        }
        #expect(caps(["NO_COLOR": "1"]).resolve(.auto) == .ascii)
        #expect(caps(["NO_COLOR": ""]).resolve(.auto) == .sixel(colorRegisters: 256), "empty NO_COLOR is unset")
        #expect(caps(["TERM": "dumb"]).resolve(.auto) == .ascii)
        #expect(caps(["TERM": "dumb"]).dumb)
        #expect(caps(["COLORTERM": "24bit"]).resolve(.blocks) == .blocks(.trueColor))
        #expect(caps(["COLORTERM": "truecolor"]).resolve(.blocks) == .blocks(.trueColor))
        #expect(caps(["COLORTERM": "yes"]).resolve(.blocks) == .blocks(.palette256))
        // Explicit modes win over detection and environment.
        #expect(caps(["NO_COLOR": "1"]).resolve(.blocks) == .blocks(.palette256))
        #expect(caps([:]).resolve(.none) == .none)
        #expect(caps([:]).resolve(.ascii) == .ascii)
        let plain = TerminalCapabilities.detect(answers: nil, window: nil, environment: [:])
        #expect(plain.resolve(.sixel) == .sixel(colorRegisters: 256))
        #expect(plain.resolve(.auto) == .blocks(.palette256))
        #expect(GraphicsMode(argument: "SIXEL") == .sixel)
        #expect(GraphicsMode(argument: "blocks") == .blocks)
        #expect(GraphicsMode(argument: "kitty") == nil)
        #expect(GraphicsMode.allCases.map(\.rawValue) == ["auto", "sixel", "blocks", "ascii", "none"])
        // No window: $COLUMNS / $LINES.
        let sized = TerminalCapabilities.detect(answers: nil, window: nil,
                                                environment: ["COLUMNS": "132", "LINES": "50"])
        #expect(sized.columns == 132 && sized.rows == 50)
    }

    @Test("probing something that is not a terminal gives nil, quickly")
    func notATerminal() {
        #expect(TerminalProbe.run(input: -1, output: -1, timeoutMilliseconds: 50) == nil)
        #expect(TerminalProbe.windowSize(fd: -1) == nil)
        let (caps, typed) = TerminalProbe.capabilities(input: -1, output: -1, environment: ["TERM": "xterm"],
                                                       timeoutMilliseconds: 50)
        #expect(typed.isEmpty)
        #expect(!caps.sixel && caps.resolve(.auto) == .blocks(.palette256))
    }
}
