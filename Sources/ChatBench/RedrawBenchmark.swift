import ChatTerminalUI
import Foundation
import ImageBuffer
import TerminalGraphics
import Thumbnailer

/// `chat-bench --redraw A.jpg B.jpg C.jpg`: the console's side of redrawing a screen that shows these photos'
/// previews as sixel, in an xterm-sized screen (100x40 cells of 8x17 pixels, 256 colour registers) with a line of
/// text between them. Times the bytes the screen produces, not the terminal drawing them:
/// - cold: the first screen, pictures quantised and encoded;
/// - from cached pictures: a new screen drawing the already quantised pictures (each emitted from its pixels);
/// - Ctrl-L: a full redraw from the cached sixel bytes (what a redraw of an unchanged screen costs);
/// - moved: every picture one row higher (a new line arrived), so each is emitted again, clipped where it meets the
///   top, from its cached quantised pixels.
struct RedrawBenchmark {
    var photos: [String]
    var runs: Int

    func run() throws {
        let columns = 100, rows = 40
        let capabilities = TerminalCapabilities(sixel: true, colorRegisters: 256, cellWidth: 8, cellHeight: 17,
                                                cellSizeKnown: true, columns: columns, rows: rows)
        let graphics = PreviewGraphics(mode: .sixel, capabilities: capabilities)
        let thumbnailer = Thumbnailer()
        var images: [(String, RGBAImage)] = []
        for path in photos {
            guard let data = FileManager.default.contents(atPath: path) else { throw BenchError("cannot read \(path)") }
            let thumbnail = try thumbnailer.makeThumbnail(from: [UInt8](data), spec: .fit320)
            images.append((path, try thumbnailer.decode(thumbnail.bytes)))
        }
        var coldTimes: [Double] = []
        var pictureTimes: [Double] = []
        var redrawTimes: [Double] = []
        var movedTimes: [Double] = []
        var bytes = (cold: 0, pictures: 0, redraw: 0, moved: 0)
        for _ in 0..<max(1, runs) {
            var screen = Screen(columns: columns, rows: rows)
            let started = ContinuousClock.now
            var lines: [DisplayLine] = []
            for (index, (path, image)) in images.enumerated() {
                lines.append(DisplayLine("12:00 alice: photo \(index + 1)"))
                lines += graphics.lines(for: image, id: path, columns: columns, rows: rows)
            }
            let cold = screen.render(lines: lines, status: "status", prompt: "> ", promptWidth: 2, input: "", cursorColumn: 0)
            coldTimes.append(milliseconds(since: started))
            var fresh = Screen(columns: columns, rows: rows)
            let picturesStart = ContinuousClock.now
            let fromPictures = fresh.render(lines: lines, status: "status", prompt: "> ", promptWidth: 2, input: "",
                                            cursorColumn: 0)
            pictureTimes.append(milliseconds(since: picturesStart))
            screen.invalidate()
            let redrawStart = ContinuousClock.now
            let redrawn = screen.render(lines: lines, status: "status", prompt: "> ", promptWidth: 2, input: "", cursorColumn: 0)
            redrawTimes.append(milliseconds(since: redrawStart))
            let movedStart = ContinuousClock.now
            let moved = screen.render(lines: lines + [DisplayLine("12:01 sam: thanks")], status: "status", prompt: "> ",
                                      promptWidth: 2, input: "", cursorColumn: 0)
            movedTimes.append(milliseconds(since: movedStart))
            bytes = (cold.count, fromPictures.count, redrawn.count, moved.count)
        }
        print("redraw: \(photos.count) sixel previews on a 100x40 screen of 8x17-pixel cells, \(max(1, runs)) runs")
        print(row("cold (quantise and encode)", coldTimes, bytes.cold))
        print(row("from cached pictures", pictureTimes, bytes.pictures))
        print(row("Ctrl-L from cached bytes", redrawTimes, bytes.redraw))
        print(row("moved a row (re-emitted)", movedTimes, bytes.moved))
    }

    private func milliseconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
    }

    private func row(_ name: String, _ times: [Double], _ bytes: Int) -> String {
        let sorted = times.sorted()
        let median = sorted[sorted.count / 2], p99 = sorted[min(sorted.count - 1, sorted.count * 99 / 100)]
        return String(format: "  %-28@ median %7.2f ms  p99 %7.2f ms  %7d bytes", name as NSString, median, p99, bytes)
    }
}
