import Foundation
import TestProcesses
import Testing

/// `/search` in the agent's console, in a real xterm on a virtual screen: the matched words are highlighted (black
/// on yellow), only they, on one row per message found.
@Suite(.serialized) struct SearchScreenTests {
    @Test(.timeLimit(.minutes(3))) func searchListsTheMessagesFoundWithTheMatchedWordHighlighted() async throws {
        let chat = try await ChatFixture()
        defer { chat.stop() }
        try await chat.sendLines(["my parcel never arrived", "hello there", "the parcel box was damaged", "thanks a lot"])

        let display = try VirtualDisplay()
        defer { display.stop() }
        let agent = try await Xterm(display: display, kind: .plain256, command: chat.clientCommand(user: "sam", log: "agent"))
        defer { agent.stop() }
        let (columns, rows) = (agent.columns, agent.rows)
        // The console is up (its status line drawn) and shows nothing yellow yet.
        try await agent.waitFor("console drawn") { shot, _ in
            guard shot.contentBox() != nil else { return "nothing drawn yet" }
            let cell = shot.cell(columns: columns, rows: rows)
            let yellow = shot.yellowCellsPerRow(cell: cell, rows: rows)
            return yellow.allSatisfy { $0 < 0.5 } ? nil : "yellow on the screen before any search: \(yellow)"
        }
        try await agent.type("/search parcel")
        try await agent.waitFor("two results, the word highlighted") { shot, _ in
            let cell = shot.cell(columns: columns, rows: rows)
            let yellow = shot.yellowCellsPerRow(cell: cell, rows: rows)
            let highlighted = yellow.filter { $0 >= 0.5 }
            // "parcel" is six cells; its glyphs (black) cover part of each cell, so four to six cells' worth of
            // yellow. A whole line highlighted, or the highlight missing, fails.
            guard highlighted.count == 2 else { return "\(highlighted.count) rows with yellow, not 2: \(yellow)" }
            return highlighted.allSatisfy { (3.5...6.2).contains($0) } ? nil : "highlight of the wrong width: \(highlighted) cells"
        }
    }
}

extension Screenshot {
    /// Per row of cells: how many cells' worth of pixels are yellow (the highlight's background, xterm's colour 3).
    func yellowCellsPerRow(cell: (width: Int, height: Int), rows: Int) -> [Double] {
        var counts = [Int](repeating: 0, count: rows)
        for y in Self.border..<(height - Self.border) {
            let row = (y - Self.border) / cell.height
            guard row < rows else { break }
            for x in 0..<width {
                let o = (y * width + x) * 3
                if rgb[o] > 150 && rgb[o + 1] > 150 && rgb[o + 2] < 80 { counts[row] += 1 }
            }
        }
        return counts.map { Double($0) / Double(cell.width * cell.height) }
    }
}
