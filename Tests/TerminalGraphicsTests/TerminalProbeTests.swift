#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Synchronization
import Testing
@testable import TerminalGraphics

#if os(Linux)
/// The probe on a real terminal device: a pseudo-terminal whose other side plays the terminal.
@Suite("Probe on a pseudo-terminal", .serialized)
struct TerminalProbeTests {
    struct PTY: Sendable {
        let master: Int32
        let slave: Int32
    }

    /// A pty pair through /dev/ptmx (posix_openpt and friends are not in Swift's Glibc module): unlock with
    /// TIOCSPTLCK, find the slave's number with TIOCGPTN (Linux ioctl numbers).
    func openPTY() throws -> PTY {
        let master = open("/dev/ptmx", O_RDWR | O_NOCTTY)
        try #require(master >= 0, "cannot open /dev/ptmx")
        var unlock: Int32 = 0
        var number: UInt32 = 0
        let tiocsptlck: UInt = 0x4004_5431, tiocgptn: UInt = 0x8004_5430
        try #require(ioctl(master, tiocsptlck, &unlock) == 0, "TIOCSPTLCK failed")
        try #require(ioctl(master, tiocgptn, &number) == 0, "TIOCGPTN failed")
        let slave = open("/dev/pts/\(number)", O_RDWR | O_NOCTTY)
        try #require(slave >= 0, "cannot open /dev/pts/\(number)")
        return PTY(master: master, slave: slave)
    }

    /// Reads what the probe wrote, waiting up to 30 s between pieces (only a failure waits that long).
    func readRequest(_ fd: Int32, count: Int) -> [UInt8] {
        var got: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 256)
        while got.count < count {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 30_000) > 0 else { break }
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            got += buffer[0..<n]
        }
        return got
    }

    func send(_ fd: Int32, _ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    }

    func lflag(_ fd: Int32) -> tcflag_t {
        var t = termios()
        _ = tcgetattr(fd, &t)
        return t.c_lflag
    }

    @Test("answers in pieces are read up to DA1; the terminal mode is restored")
    func answered() async throws {
        let pty = try openPTY()
        defer {
            close(pty.slave)
            close(pty.master)
        }
        let before = lflag(pty.slave)
        #expect(before & tcflag_t(ICANON) != 0, "a fresh pty starts canonical")
        // Both sides block on the pty: each gets a thread of its own, and both threads start here and now. (An
        // `async let` for the probe started its thread only when the child task got a turn on the small, shared
        // cooperative pool; with the whole suite running on a loaded machine that once took longer than the
        // terminal's side waited for the request.)
        let master = pty.master, slave = pty.slave
        let request = Mutex<[UInt8]>([])
        let probed = await withCheckedContinuation { done in
            Thread {
                let seen = readRequest(master, count: TerminalProbe.request.count)
                request.withLock { $0 = seen }
                send(master, "x\u{1B}[6;20;10t\u{1B}[4;480;8")
                usleep(30_000)
                send(master, "00t\u{1B}[?1;0;256S\u{1B}[?63;1;2;4;6;9;15;16;22;28c")
            }.start()
            Thread { done.resume(returning: TerminalProbe.run(input: slave, output: slave, timeoutMilliseconds: 20_000)) }.start()
        }
        // The terminal's side stored the request before it answered, and the probe returned after the last answer.
        #expect(request.withLock { $0 } == TerminalProbe.request)
        let answers = try #require(probed)
        #expect(answers.isComplete && answers.announcesSixel)
        #expect(answers.cellSize == PixelSize(width: 10, height: 20))
        #expect(answers.textAreaSize == PixelSize(width: 800, height: 480))
        #expect(answers.colorRegisters == 256)
        #expect(answers.otherInput == Array("x".utf8))
        #expect(lflag(pty.slave) == before, "terminal mode restored")
    }

    @Test("no answer: gives up after the budget, mode restored")
    func silent() async throws {
        let pty = try openPTY()
        defer {
            close(pty.slave)
            close(pty.master)
        }
        let before = lflag(pty.slave)
        let start = ContinuousClock.now
        let answers = try #require(TerminalProbe.run(input: pty.slave, output: pty.slave, timeoutMilliseconds: 200))
        let elapsed = ContinuousClock.now - start
        #expect(!answers.isComplete)
        // It waited for its budget, and gave up rather than hang (the upper bound is loose: a loaded machine is slow).
        #expect(elapsed >= .milliseconds(150) && elapsed < .seconds(10), "took \(elapsed)")
        #expect(lflag(pty.slave) == before)
        let caps = TerminalCapabilities.detect(answers: answers, window: TerminalProbe.windowSize(fd: pty.slave),
                                               environment: ["TERM": "xterm-256color"])
        #expect(!caps.sixel && caps.resolve(.auto) == .blocks(.palette256))
    }

    @Test("TIOCGWINSZ is read, pixel fields included")
    func windowSize() throws {
        let pty = try openPTY()
        defer {
            close(pty.slave)
            close(pty.master)
        }
        var ws = winsize(ws_row: 30, ws_col: 100, ws_xpixel: 900, ws_ypixel: 540)
        #expect(ioctl(pty.master, UInt(TIOCSWINSZ), &ws) == 0)
        #expect(TerminalProbe.windowSize(fd: pty.slave) == WindowSize(columns: 100, rows: 30, pixelWidth: 900,
                                                                       pixelHeight: 540))
        let caps = TerminalCapabilities.detect(answers: nil, window: TerminalProbe.windowSize(fd: pty.slave),
                                               environment: [:])
        #expect(caps.cellSizeKnown && caps.cellWidth == 9 && caps.cellHeight == 18)
        #expect(caps.columns == 100 && caps.rows == 30)
    }
}
#endif
