import ImageBuffer
import Testing
import TerminalGraphics
@testable import ChatTerminalUI

@Suite struct ScreenTests {
    func render(_ screen: inout Screen, _ lines: [String], input: String = "") -> String {
        String(decoding: screen.render(lines: lines.map(DisplayLine.init), status: "STATUS", prompt: "> ", promptWidth: 2,
                                       input: input, cursorColumn: TextWidth.width(input)), as: UTF8.self)
    }

    @Test func firstFrameSetsTheScrollRegionAndBottomAlignsMessages() {
        var screen = Screen(columns: 40, rows: 10)
        let out = render(&screen, ["one", "two"], input: "日x")
        #expect(out.contains("\u{1B}[1;8r"), "scroll region rows 1-8")
        #expect(out.contains("\u{1B}[7;1H\u{1B}[2Kone"))
        #expect(out.contains("\u{1B}[8;1H\u{1B}[2Ktwo"))
        #expect(out.contains("\u{1B}[9;1H\u{1B}[2KSTATUS"))
        #expect(out.contains("\u{1B}[10;1H\u{1B}[2K> 日x"))
        // Cursor after the prompt (2) and "日x" (3 columns): column 6.
        #expect(out.hasSuffix("\u{1B}[10;6H\u{1B}[?25h"))
    }

    @Test func aNewMessageScrollsTheRegionAndWritesOnlyTheNewRow() {
        var screen = Screen(columns: 40, rows: 10)
        _ = render(&screen, ["one", "two"])
        let out = render(&screen, ["one", "two", "three"])
        #expect(out.contains("\u{1B}[8;1H\n"), "one line feed at the bottom of the region")
        #expect(out.contains("\u{1B}[8;1H\u{1B}[2Kthree"))
        #expect(!out.contains("one") && !out.contains("two"))
        #expect(!out.contains("\u{1B}[2J"))
    }

    @Test func aChangedRowIsRewrittenInPlace() {
        var screen = Screen(columns: 40, rows: 10)
        _ = render(&screen, ["a", "mine …", "b"])
        let out = render(&screen, ["a", "mine ✓", "b"])
        #expect(out.contains("\u{1B}[7;1H\u{1B}[2Kmine ✓"))
        #expect(!out.contains("\n"))
        #expect(!out.contains("\u{1B}[6;1H\u{1B}[2Ka"))
    }

    @Test func resizeRepaintsEverything() {
        var screen = Screen(columns: 40, rows: 10)
        _ = render(&screen, ["a"])
        screen.resize(columns: 30, rows: 6)
        let out = render(&screen, ["a"])
        #expect(out.contains("\u{1B}[1;4r"))
        #expect(out.contains("\u{1B}[2J"))
        #expect(out.contains("\u{1B}[4;1H\u{1B}[2Ka"))
    }

    @Test func restoreBytesResetTheRegionAndShowTheCursor() {
        let bytes = String(decoding: Screen.restoreBytes(rows: 24), as: UTF8.self)
        #expect(bytes.hasPrefix("\u{1B}[r"))
        #expect(bytes.contains("\u{1B}[?25h"))
        #expect(bytes.contains("\u{1B}[24;1H"))
    }

    @Test func halfBlockPreviewLinesAreOneRowEachWithTheCellColours() throws {
        // 4x4: top half red, bottom half blue; in blocks mode each cell shows two pixels (upper half block).
        var pixels: [UInt8] = []
        for y in 0..<4 { for _ in 0..<4 { pixels += y < 2 ? [255, 0, 0, 255] : [0, 0, 255, 255] } }
        let image = try #require(RGBAImage(width: 4, height: 4, pixels: pixels))
        var caps = TerminalCapabilities(cellWidth: 10, cellHeight: 20, cellSizeKnown: true, columns: 80, rows: 60,
                                        trueColor: true)
        caps.colors = true
        let graphics = PreviewGraphics(mode: .blocks, capabilities: caps)
        let lines = graphics.lines(for: image, id: "x", columns: 80, rows: 60)
        #expect(!lines.isEmpty)
        #expect(lines.allSatisfy { $0.graphic == nil })
        let first = try #require(lines.first?.text)
        #expect(first.contains("255;0;0"), "red in the first row: \(first.debugDescription)")
        #expect(lines.contains { $0.text.contains("0;0;255") }, "blue further down")
        #expect(lines.count == graphics.rows(width: 4, height: 4, columns: 80, rows: 60))
    }

    @Test func formatterMarksOwnMessagesAndDeliveryStates() {
        let formatter = MessageFormatter(style: Style(colors: false), columns: 60, user: "alice")
        func text(_ delivery: Delivery?, sender: String = "alice") -> String {
            let message = ChatProtocol.ChatMessage(id: 1, conversation: "alice", seq: 1, sender: sender,
                                                   senderRole: sender == "alice" ? .customer : .agent,
                                                   clientId: "c", text: "hi", sentAt: 0, broadcast: false)
            return formatter.lines(for: .message(message, delivery: delivery)).map(\.text).joined(separator: "\n")
        }
        #expect(text(.stored).contains("» alice (me): hi ✓"))
        #expect(text(.read).contains("✓✓ read"))
        #expect(text(nil, sender: "sam").contains("sam [agent]: hi"))
        let pending = PendingMessage(clientId: "p", text: "wait", conversation: "alice", broadcast: false,
                                     attachments: nil, createdAt: 0)
        #expect(formatter.lines(for: .pending(pending)).map(\.text).joined().contains("wait … sending"))
        let error = Notice(kind: .error, text: "boom", conversation: nil, time: 0, serial: 1)
        let info = Notice(kind: .info, text: "note", conversation: nil, time: 0, serial: 2)
        #expect(formatter.lines(for: .notice(error)).first?.text.contains("!! boom") == true)
        #expect(formatter.lines(for: .notice(info)).first?.text.contains("-- note") == true)
    }
}

import ChatProtocol
