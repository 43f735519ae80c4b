import Testing
@testable import ChatTerminalUI

@Suite struct TextWidthTests {
    @Test func asciiIsOneColumnEach() {
        #expect(TextWidth.width("hello") == 5)
        #expect(TextWidth.width("") == 0)
    }

    @Test func cjkAndHangulAreTwoColumns() {
        #expect(TextWidth.width("日本語") == 6)
        #expect(TextWidth.width("한국") == 4)
        #expect(TextWidth.width("ｱ") == 1)  // halfwidth katakana stays narrow
        #expect(TextWidth.width("ＡＢ") == 4)  // fullwidth Latin
        #expect(TextWidth.width("a日b") == 4)
    }

    @Test func emojiAreTwoColumnsPerCluster() {
        #expect(TextWidth.width("👍") == 2)
        #expect(TextWidth.width("👍🏽") == 2)  // skin tone modifier joins the cluster
        #expect(TextWidth.width("👨‍👩‍👧") == 2)  // ZWJ family
        #expect(TextWidth.width("🇯🇵") == 2)  // flag
        #expect(TextWidth.width("❤️") == 2)  // text-default symbol with VS16
        #expect(TextWidth.width("❤") == 1)  // without VS16: text presentation
    }

    @Test func combiningMarksTakeNoColumn() {
        #expect(TextWidth.width("e\u{301}") == 1)
        #expect(TextWidth.width("a\u{308}\u{304}") == 1)
        #expect(TextWidth.width("\u{301}") == 0)
        #expect(TextWidth.width("Z\u{0351}\u{036B}") == 1)
    }

    @Test func controlCharactersAreNeutralised() {
        let cleaned = TextWidth.sanitize("evil\u{1B}[2Jtext\u{07}")
        #expect(!cleaned.contains("\u{1B}"))
        #expect(!cleaned.contains("\u{07}"))
    }

    @Test func wrapNeverSplitsAWideCharacterAndRespectsWidth() {
        let lines = TextWidth.wrap("日本語のテキストです hello world", columns: 7)
        #expect(lines.allSatisfy { TextWidth.width($0) <= 7 })
        #expect(lines.joined().replacingOccurrences(of: " ", with: "") == "日本語のテキストですhelloworld")
    }
}

@Suite struct KeyDecoderTests {
    @Test func utf8SplitAcrossReadsIsKeptUntilComplete() {
        var decoder = KeyDecoder()
        let bytes = Array("日".utf8)
        #expect(decoder.feed(Array(bytes[0..<2])).isEmpty)
        #expect(decoder.feed(Array(bytes[2...])) == [.character("日")])
    }

    @Test func arrowsAndControls() {
        var decoder = KeyDecoder()
        let keys = decoder.feed(Array("\u{1B}[A\u{1B}[D\u{1B}OC\u{1B}[3~\u{7F}\r\u{03}\u{04}\t\u{1B}[5~".utf8))
        #expect(keys == [.up, .left, .right, .delete, .backspace, .enter, .ctrl("c"), .ctrl("d"), .tab, .pageUp])
    }

    @Test func incompleteEscapeSequenceWaits() {
        var decoder = KeyDecoder()
        #expect(decoder.feed(Array("\u{1B}[1;5".utf8)).isEmpty)
        #expect(decoder.feed(Array("D".utf8)) == [.wordLeft])
    }

    @Test func lateProbeAnswersAreDroppedNotTyped() {
        var decoder = KeyDecoder()
        // A palette answer after the probe's budget, split across reads, between typed keys.
        #expect(decoder.feed(Array("a\u{1B}]4;1;rgb:cd".utf8)) == [.character("a")])
        #expect(decoder.feed(Array("cd/0000/0000\u{1B}\\b\u{1B}]4;2;rgb:00/cd/00\u{07}c".utf8)) == [.character("b"), .character("c")])
        // Alt-] typed by a person is not an answer: it never holds the input back.
        #expect(decoder.feed(Array("\u{1B}]x".utf8)) == [.escape, .character("]"), .character("x")])
        var long = KeyDecoder()
        let keys = long.feed(Array(("\u{1B}]1" + String(repeating: "y", count: 300)).utf8))
        #expect(keys.first == .escape && keys.count == 303, "no terminator within any answer's length: keys after all")
    }

    @Test func emojiWithModifierIsOneKey() {
        var decoder = KeyDecoder()
        #expect(decoder.feed(Array("👍🏽".utf8)) == [.character("👍🏽")])
    }
}

@Suite struct LineEditorTests {
    func type(_ text: String, into editor: inout LineEditor) {
        var decoder = KeyDecoder()
        for key in decoder.feed(Array(text.utf8)) { _ = editor.handle(key) }
    }

    @Test func combiningMarkTypedSeparatelyJoinsTheCharacter() {
        var editor = LineEditor()
        _ = editor.handle(.character("e"))
        _ = editor.handle(.character("\u{301}"))
        #expect(editor.characters.count == 1)
        #expect(editor.text == "e\u{301}")
        _ = editor.handle(.backspace)
        #expect(editor.text.isEmpty)
    }

    @Test func cursorMovesByClusterAndColumnsCountWidth() {
        var editor = LineEditor()
        type("a日👍🏽b", into: &editor)
        #expect(editor.visible(columns: 40).cursorColumn == 1 + 2 + 2 + 1)
        _ = editor.handle(.left)
        _ = editor.handle(.left)
        #expect(editor.visible(columns: 40).cursorColumn == 3)
        _ = editor.handle(.backspace)
        #expect(editor.text == "a👍🏽b")
        _ = editor.handle(.character("x"))
        #expect(editor.text == "ax👍🏽b")
    }

    @Test func longLineScrollsHorizontallyKeepingTheCursorVisible() {
        var editor = LineEditor()
        type(String(repeating: "日", count: 30), into: &editor)
        let (text, column) = editor.visible(columns: 20)
        #expect(TextWidth.width(text) <= 20)
        #expect(column <= 19)
        #expect(column == TextWidth.width(text))
    }

    @Test func historyUpAndDownRestoresTheDraft() {
        var editor = LineEditor()
        type("first\r", into: &editor)
        type("second\r", into: &editor)
        type("draft", into: &editor)
        _ = editor.handle(.up)
        #expect(editor.text == "second")
        _ = editor.handle(.up)
        #expect(editor.text == "first")
        _ = editor.handle(.down)
        _ = editor.handle(.down)
        #expect(editor.text == "draft")
    }

    @Test func ctrlCQuitsAndCtrlDQuitsOnlyOnEmptyLine() {
        var editor = LineEditor()
        #expect(editor.handle(.ctrl("c")) == .quit)
        type("x", into: &editor)
        _ = editor.handle(.home)
        #expect(editor.handle(.ctrl("d")) == .changed)
        #expect(editor.text.isEmpty)
        #expect(editor.handle(.ctrl("d")) == .quit)
    }

    @Test func submitReturnsTheLineAndClears() {
        var editor = LineEditor()
        type("hi there", into: &editor)
        #expect(editor.handle(.enter) == .submit("hi there"))
        #expect(editor.text.isEmpty)
    }
}
