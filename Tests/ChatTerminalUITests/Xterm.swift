import Foundation
import TestProcesses
#if canImport(Glibc)
import Glibc
#endif

// A real terminal on a virtual screen, for tests that look at what a person sees: Xvfb, xterm (VT340 mode for sixel,
// or a plain 256-colour xterm), keys typed with xdotool, the window photographed with xwd. A decoder of the byte
// stream cannot see a picture that the terminal erased, misplaced or scrolled away; a photograph of xterm can.
// Needs the Debian packages xvfb, xterm, xdotool, x11-apps (xwd), fonts-dejavu-core and imagemagick (to keep a
// failing case's screenshot as PNG); `.ci/run` installs them.

/// An X server of the test's own on a free display number, big enough for three terminals side by side.
final class VirtualDisplay: Sendable {
    let name: String
    private let process: Process

    init() throws {
        for tool in ["Xvfb", "xterm", "xdotool", "xwd"] where findExecutable(tool) == nil {
            throw TestFailure("\(tool) is missing: apt-get install xvfb xterm xdotool x11-apps fonts-dejavu-core")
        }
        var number = 90 + Int(getpid() % 50) * 4
        while FileManager.default.fileExists(atPath: "/tmp/.X11-unix/X\(number)")
                || FileManager.default.fileExists(atPath: "/tmp/.X\(number)-lock") {
            number += 1
        }
        name = ":\(number)"
        process = Process()
        process.executableURL = URL(fileURLWithPath: try requireExecutable("Xvfb"))
        process.arguments = [name, "-screen", "0", "2600x1400x24", "-nolisten", "tcp", "-noreset"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = ContinuousClock.now + .seconds(10)
        while !FileManager.default.fileExists(atPath: "/tmp/.X11-unix/X\(number)") {
            guard process.isRunning, ContinuousClock.now < deadline else {
                stop()
                throw TestFailure("Xvfb \(name) did not start")
            }
            usleep(20_000)
        }
    }

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        if !waitForExit(process, within: .seconds(5)) { kill(process.processIdentifier, SIGKILL) }
    }
}

/// One xterm window running a command, at a given place on the display.
final class Xterm: Sendable {
    enum Kind: Sendable {
        /// `xterm -ti vt340`: sixel graphics with 256 colour registers.
        case sixel
        /// `xterm -tn xterm-256color`: no sixel; previews are half blocks in the 256-colour palette.
        case plain256
    }

    let display: String
    let columns: Int
    let rows: Int
    let window: String
    private let process: Process

    /// Starts `command` (run by `sh -c`) in an xterm of `columns` x `rows` cells at pixel (`x`, `y`) of the display, and
    /// waits for its window. The window stays after the command exits (`-hold`), so its last screen can be looked at.
    init(display: VirtualDisplay, kind: Kind, columns: Int = 100, rows: Int = 40, x: Int = 0, y: Int = 0,
         command: String) async throws {
        self.display = display.name
        self.columns = columns
        self.rows = rows
        var arguments = ["-display", display.name, "-geometry", "\(columns)x\(rows)+\(x)+\(y)", "-fa", "DejaVu Sans Mono",
                         "-fs", "10", "-bg", "black", "-fg", "white", "-hold"]
        switch kind {
        case .sixel:
            arguments += ["-ti", "vt340", "-xrm", "XTerm*decTerminalID: vt340", "-xrm", "XTerm*numColorRegisters: 256"]
        case .plain256:
            arguments += ["-tn", "xterm-256color"]
        }
        arguments += ["-e", "/bin/sh", "-c", command]
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try requireExecutable("xterm"))
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        for name in ["TMUX", "NO_COLOR", "STY", "COLORTERM"] { environment[name] = nil }
        environment["DISPLAY"] = display.name
        environment["SWIFT_BACKTRACE"] = "interactive=no"
        // The probe ends at the terminal's last answer; the budget only matters on a loaded machine, where 200 ms
        // may pass before xterm answers and the client would fall back to half blocks.
        environment["CHAT_PROBE_TIMEOUT_MS"] = "5000"
        process.environment = environment
        let errors = FileManager.default.temporaryDirectory.appendingPathComponent("xterm-\(UUID().uuidString).err")
        guard FileManager.default.createFile(atPath: errors.path, contents: nil) else {
            throw TestFailure("cannot create \(errors.path)")
        }
        defer { try? FileManager.default.removeItem(at: errors) }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: errors)
        try process.run()
        self.process = process
        let pid = process.processIdentifier
        let name = display.name
        var found: String?
        let deadline = ContinuousClock.now + .seconds(20)
        while found == nil, ContinuousClock.now < deadline {
            let result = try await runTool(try requireExecutable("xdotool"), ["search", "--onlyvisible", "--pid", String(pid)],
                                           timeout: .seconds(30), environment: ["DISPLAY": name])
            found = result.output.split(separator: "\n").first.map(String.init)
            if found == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        guard let found else {
            let state = process.isRunning ? "running" : "exited with \(process.terminationStatus)"
            process.terminate()
            let stderr = (try? String(contentsOf: errors, encoding: .utf8)) ?? ""
            throw TestFailure("xterm's window did not appear on \(name) (xterm \(state), command \(command)): \(stderr)")
        }
        window = found
    }

    /// Types `text` as key presses, then Enter.
    func type(_ text: String) async throws {
        try await xdotool(["windowfocus", "--sync", window])
        try await xdotool(["type", "--delay", "8", text])
        try await xdotool(["key", "Return"])
    }

    /// Presses one key, e.g. `ctrl+l`, `Prior` (PgUp), `Next` (PgDn).
    func key(_ keysym: String) async throws {
        try await xdotool(["windowfocus", "--sync", window])
        try await xdotool(["key", keysym])
    }

    /// Resizes the window to `columns` x `rows` cells of `cell` pixels (xterm then tells its program, SIGWINCH).
    func resize(columns: Int, rows: Int, cell: (width: Int, height: Int)) async throws {
        let border = 2 * Screenshot.border
        try await xdotool(["windowsize", window, String(columns * cell.width + border), String(rows * cell.height + border)])
    }

    /// X tools get 30 s: under the whole suite on two cores, xdotool and xwd each once took over 10 s (the test
    /// alone takes 17 s in all).
    private func xdotool(_ arguments: [String]) async throws {
        let result = try await runTool(try requireExecutable("xdotool"), arguments, timeout: .seconds(30),
                                       environment: ["DISPLAY": display])
        guard result.status == 0 else { throw TestFailure("xdotool \(arguments.joined(separator: " ")): \(result.stderr)") }
    }

    /// What the window shows now. Decoded on a thread of its own, like every look at the pixels: in a debug build
    /// that is CPU work for a good fraction of a second, which on the cooperative pool (two threads on the CI machine)
    /// would starve the servers of the tests running beside this one.
    func screenshot() async throws -> Screenshot {
        let result = try await runTool(try requireExecutable("xwd"), ["-display", display, "-id", window, "-nobdrs", "-silent"],
                                       timeout: .seconds(30))
        guard result.status == 0 else { throw TestFailure("xwd: \(result.stderr)") }
        return try await offPool { try Screenshot(xwd: result.stdout) }
    }

    /// Takes screenshots until `check` (given the screenshot and the one before it) finds nothing missing (nil),
    /// and returns that screenshot. `check` runs off the cooperative pool. On timeout the last screenshot is kept as
    /// a PNG and the error names it and what was missing.
    @discardableResult
    func waitFor(_ what: String, timeout: Duration = .seconds(20),
                 _ check: @escaping @Sendable (Screenshot, Screenshot?) -> String?) async throws -> Screenshot {
        let deadline = ContinuousClock.now + timeout
        var previous: Screenshot?
        while true {
            let shot = try await screenshot()
            let before = previous
            guard let reason = try await offPool({ check(shot, before) }) else { return shot }
            guard ContinuousClock.now < deadline else {
                let path = try await shot.keep(named: what)
                throw TestFailure("\(what): \(reason); the screen is kept in \(path)")
            }
            previous = shot
            try await Task.sleep(for: .milliseconds(150))
        }
    }

    /// Closes the window at once (xterm holding a window ignores SIGTERM); its program gets SIGHUP from the pty.
    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        _ = waitForExit(process, within: .seconds(5))
    }
}

/// An RGB photograph of a window, decoded from xwd's format (ZPixmap, 24 or 32 bits per pixel, either byte order).
struct Screenshot: Sendable {
    /// xterm's inner border, in pixels, around the cells.
    static let border = 2

    let width: Int
    let height: Int
    /// 3 bytes per pixel, row by row.
    let rgb: [UInt8]

    init(width: Int, height: Int, rgb: [UInt8]) {
        self.width = width
        self.height = height
        self.rgb = rgb
    }

    init(xwd data: [UInt8]) throws {
        guard data.count >= 100 else { throw TestFailure("xwd output too short (\(data.count) bytes)") }
        func field(_ index: Int) -> Int {
            let o = index * 4
            return Int(data[o]) << 24 | Int(data[o + 1]) << 16 | Int(data[o + 2]) << 8 | Int(data[o + 3])
        }
        let headerSize = field(0), format = field(2), width = field(4), height = field(5), byteOrder = field(7)
        let bitsPerPixel = field(11), bytesPerLine = field(12), colors = field(19)
        let masks = (field(14), field(15), field(16))
        let start = headerSize + colors * 12
        guard format == 2, bitsPerPixel == 32 || bitsPerPixel == 24, width > 0, height > 0,
              data.count >= start + bytesPerLine * height else {
            throw TestFailure("unexpected xwd image: format \(format), \(bitsPerPixel) bpp, \(width)x\(height), \(data.count) bytes")
        }
        func shift(_ mask: Int) -> Int { mask == 0 ? 0 : mask.trailingZeroBitCount }
        let shifts = (shift(masks.0), shift(masks.1), shift(masks.2))
        let bytes = bitsPerPixel / 8
        var rgb = [UInt8](repeating: 0, count: width * height * 3)
        data.withUnsafeBufferPointer { source in
            rgb.withUnsafeMutableBufferPointer { out in
                for y in 0..<height {
                    let line = start + y * bytesPerLine
                    for x in 0..<width {
                        let p = line + x * bytes
                        var value = 0
                        for i in 0..<bytes {
                            value |= Int(source[p + i]) << (byteOrder == 0 ? 8 * i : 8 * (bytes - 1 - i))
                        }
                        let o = (y * width + x) * 3
                        out[o] = UInt8(truncatingIfNeeded: (value & masks.0) >> shifts.0)
                        out[o + 1] = UInt8(truncatingIfNeeded: (value & masks.1) >> shifts.1)
                        out[o + 2] = UInt8(truncatingIfNeeded: (value & masks.2) >> shifts.2)
                    }
                }
            }
        }
        self.init(width: width, height: height, rgb: rgb)
    }

    /// The pixel size of a cell, from the window's size in cells.
    func cell(columns: Int, rows: Int) -> (width: Int, height: Int) {
        ((width - 2 * Self.border) / columns, (height - 2 * Self.border) / rows)
    }

    func crop(x: Int, y: Int, width w: Int, height h: Int) -> Screenshot {
        var out = [UInt8](repeating: 0, count: w * h * 3)
        for row in 0..<h {
            let from = ((y + row) * width + x) * 3
            out.replaceSubrange((row * w * 3)..<((row + 1) * w * 3), with: rgb[from..<(from + w * 3)])
        }
        return Screenshot(width: w, height: h, rgb: out)
    }

    /// The smallest rectangle holding the pixels that are not the black background, in rows that have more than
    /// `minimumPerRow` of them (so a lone cursor block does not count), or nil.
    func contentBox(minimumPerRow: Int = 0) -> (x: Int, y: Int, width: Int, height: Int)? {
        var minX = width, minY = height, maxX = -1, maxY = -1
        for y in 0..<height {
            var first = -1, last = -1, count = 0
            for x in 0..<width {
                let o = (y * width + x) * 3
                if rgb[o] > 8 || rgb[o + 1] > 8 || rgb[o + 2] > 8 {
                    if first < 0 { first = x }
                    last = x
                    count += 1
                }
            }
            guard count > minimumPerRow else { continue }
            minX = min(minX, first); maxX = max(maxX, last)
            minY = min(minY, y); maxY = y
        }
        guard maxX >= 0 else { return nil }
        return (minX, minY, maxX - minX + 1, maxY - minY + 1)
    }

    /// Pixels whose channels differ by more than `threshold` (colour, as in a photo; text and the status line are
    /// grey), in rows `rows`.
    func colourfulPixels(rows: Range<Int>, threshold: Int = 24) -> Int {
        var count = 0
        for y in max(0, rows.lowerBound)..<min(height, rows.upperBound) {
            for x in 0..<width {
                let o = (y * width + x) * 3
                let r = Int(rgb[o]), g = Int(rgb[o + 1]), b = Int(rgb[o + 2])
                if max(abs(r - g), abs(g - b), abs(r - b)) > threshold { count += 1 }
            }
        }
        return count
    }

    /// PSNR of `template`'s rows `templateRows` against this screenshot at (`x`, `y` + those rows); every other
    /// pixel and row, which is plenty for a photo and four times faster in a debug build.
    func psnr(of template: Screenshot, rows templateRows: Range<Int>, x: Int, y: Int) -> Double {
        var squared = 0.0
        var count = 0
        template.rgb.withUnsafeBufferPointer { t in
            rgb.withUnsafeBufferPointer { s in
                for row in stride(from: templateRows.lowerBound, to: templateRows.upperBound, by: 2) {
                    let sy = y + row
                    guard sy >= 0, sy < height else { continue }
                    for column in stride(from: 0, to: min(template.width, width - x), by: 2) {
                        let to = (row * template.width + column) * 3
                        let so = (sy * width + x + column) * 3
                        for c in 0..<3 {
                            let d = Double(Int(t[to + c]) - Int(s[so + c]))
                            squared += d * d
                        }
                        count += 3
                    }
                }
            }
        }
        guard count > 0 else { return 0 }
        return 10 * log10(255 * 255 / max(1e-9, squared / Double(count)))
    }

    /// Where `template` (a whole preview as the terminal draws it) shows in the message area, rows
    /// `area` in pixels: placements with the picture's top on a cell row, fully in view or cut by the area's top or
    /// bottom edge, with at least one cell row in view. Only those at or above `minimumPSNR` are returned.
    func find(_ template: Screenshot, x: Int, cellHeight: Int, area: Range<Int>, minimumPSNR: Double = 25) -> [PictureMatch] {
        var matches: [PictureMatch] = []
        let cellRows = (template.height + cellHeight - 1) / cellHeight
        let areaCells = (area.upperBound - area.lowerBound) / cellHeight
        for k in -(cellRows - 1)..<areaCells {
            let top = area.lowerBound + k * cellHeight
            let visible = max(0, area.lowerBound - top)..<min(template.height, area.upperBound - top)
            guard visible.count >= min(cellHeight, template.height) else { continue }
            let value = psnr(of: template, rows: visible, x: x, y: top)
            if value >= minimumPSNR {
                matches.append(PictureMatch(top: top, visibleRows: visible, whole: visible.count == template.height, psnr: value))
            }
        }
        return matches
    }

    /// Keeps this screenshot as a PNG (ImageMagick converts it), and returns its path.
    func keep(named name: String) async throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chat-xterm-shots").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let safe = String(name.map { $0.isLetter || $0.isNumber ? $0 : "-" })
        let base = directory + "/" + safe + "-" + String(UUID().uuidString.prefix(8))
        var ppm = Array("P6\n\(width) \(height)\n255\n".utf8)
        ppm += rgb
        try Data(ppm).write(to: URL(fileURLWithPath: base + ".ppm"))
        guard let convert = findExecutable("convert"),
              try await runTool(convert, [base + ".ppm", base + ".png"]).status == 0 else { return base + ".ppm" }
        try? FileManager.default.removeItem(atPath: base + ".ppm")
        return base + ".png"
    }
}

/// A preview found on the screen.
struct PictureMatch: Sendable, CustomStringConvertible {
    /// Pixel row of the picture's top (negative when cut by the area's top).
    var top: Int
    /// The picture's pixel rows in view.
    var visibleRows: Range<Int>
    var whole: Bool
    var psnr: Double

    var description: String {
        "at y \(top)" + (whole ? " whole" : " rows \(visibleRows.lowerBound)..<\(visibleRows.upperBound)")
            + String(format: " (%.1f dB)", psnr)
    }
}
