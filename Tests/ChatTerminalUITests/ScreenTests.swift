import ChatProtocol
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

    /// Rows of a picture `rows` text rows of 20 pixels tall.
    func pictureLines(_ id: String, rows: Int) throws -> [DisplayLine] {
        let image = try #require(RGBAImage(width: 16, height: rows * 20,
                                           pixels: [UInt8](repeating: 200, count: 16 * rows * 20 * 4)))
        let picture = SixelEncoder().picture(image, canvasHeight: rows * 20)
        return (0..<rows).map { DisplayLine(picture: PictureRow(id: id, row: $0, rows: rows, cellHeight: 20, picture: picture)) }
    }

    func render(_ screen: inout Screen, _ lines: [DisplayLine]) -> String {
        String(decoding: screen.render(lines: lines, status: "STATUS", prompt: "> ", promptWidth: 2, input: "",
                                       cursorColumn: 0), as: UTF8.self)
    }

    @Test func aPictureIsDrawnAfterTheTextAndItsRowsAreNotWrittenWhileItStays() throws {
        var screen = Screen(columns: 40, rows: 12)  // message rows 1...10
        let picture = try pictureLines("p", rows: 2)
        // Bottom-aligned: "a" on row 7, the picture on rows 8-9, "b" on row 10.
        let first = render(&screen, [DisplayLine("a")] + picture + [DisplayLine("b")])
        let sixel = try #require(first.range(of: "\u{1B}P"))
        #expect(first.range(of: "\u{1B}[10;1H\u{1B}[2Kb").map { $0.upperBound <= sixel.lowerBound } == true,
                "text rows are written before the picture")
        #expect(first.contains("\u{1B}[r\u{1B}[8;1H\u{1B}[2K\u{1B}[9;1H\u{1B}[2K\u{1B}[8;1H\u{1B}P"),
                "whole screen as scroll region, the picture's rows cleared, then the picture at its top row")
        #expect(first.contains("\u{1B}\\\u{1B}[1;10r"), "the message area is the scroll region again after it")
        #expect(!first[sixel.upperBound...].contains("\u{1B}[8;1H") && !first[sixel.upperBound...].contains("\u{1B}[9;1H"),
                "nothing goes to the picture's rows after it is drawn")

        // A row below changes: the picture stays as drawn, its rows untouched.
        let second = render(&screen, [DisplayLine("a")] + picture + [DisplayLine("b ✓")])
        #expect(second.contains("\u{1B}[10;1H\u{1B}[2Kb ✓"))
        #expect(!second.contains("\u{1B}P") && !second.contains("\u{1B}[8;1H") && !second.contains("\u{1B}[9;1H"))

        // A new line at the bottom: the picture moves up a row and is drawn again there, without scrolling the
        // region (a terminal moves pictures in a scrolled region its own way, or not at all).
        let third = render(&screen, [DisplayLine("a")] + picture + [DisplayLine("b ✓"), DisplayLine("c")])
        #expect(!third.contains("\n"))
        #expect(third.contains("\u{1B}[7;1H\u{1B}[2K\u{1B}[8;1H\u{1B}[2K\u{1B}[7;1H\u{1B}P"))
        #expect(third.contains("\u{1B}[9;1H\u{1B}[2Kb ✓") && third.contains("\u{1B}[10;1H\u{1B}[2Kc"))
        #expect(third.contains("\u{1B}[6;1H\u{1B}[2Ka"))
    }

    @Test func aPicturePartlyOutOfViewIsDrawnClippedToItsRowsInView() throws {
        var screen = Screen(columns: 40, rows: 6)  // message rows 1...4
        let picture = try pictureLines("p", rows: 3)
        // Rows 1 and 2 of the picture are in view (row 0 is above the area), then two lines of text.
        let out = render(&screen, picture + [DisplayLine("x"), DisplayLine("y")])
        #expect(out.contains("\u{1B}[1;1H\u{1B}P0;1q\"1;1;16;40") || out.contains("\u{1B}[1;1H\u{1B}Pq\"1;1;16;40"),
                "a 40-pixel raster (two rows of 20) at the top of the area: \(out.debugDescription)")
        // The same picture whole, once there is room for it.
        screen.resize(columns: 40, rows: 12)
        let whole = render(&screen, picture + [DisplayLine("x"), DisplayLine("y")])
        #expect(whole.contains("q\"1;1;16;60"))
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
        #expect(lines.allSatisfy { $0.picture == nil })
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

@Suite("attachment card details")
struct AttachmentCardTests {
    @Test("durations, animations and removed metadata as the card shows them")
    func details() {
        var clip = Attachment(sha256: String(repeating: "a", count: 64), name: "clip.mp4", type: "video/mp4", size: 10, durationMs: 3_723_400)
        #expect(MessageFormatter.attachmentDetails(clip) == ["1:02:03"])
        clip.durationMs = 7_999
        #expect(MessageFormatter.attachmentDetails(clip) == ["0:07"])
        let gif = Attachment(sha256: String(repeating: "b", count: 64), name: "a.gif", type: "image/gif", size: 10, frames: 12)
        #expect(MessageFormatter.attachmentDetails(gif) == ["animated, 12 frames"])
        let photo = Attachment(sha256: String(repeating: "c", count: 64), name: "p.jpg", type: "image/jpeg", size: 10, metadataRemoved: true)
        #expect(MessageFormatter.attachmentDetails(photo) == ["location removed"])
        let still = Attachment(sha256: String(repeating: "d", count: 64), name: "s.gif", type: "image/gif", size: 10, frames: 1)
        #expect(MessageFormatter.attachmentDetails(still).isEmpty)
    }
}
