#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Asks a real terminal what it can do: one batch of queries, answers read until the DA1 answer or the time budget
/// runs out. The parsing is `ProbeAnswers.parse`; this is only the tty I/O.
public enum TerminalProbe {
    /// `CSI 16 t` (cell size), `CSI 14 t` (text area), `CSI ? 1 ; 1 ; 0 S` (colour registers), `OSC 4` for the
    /// first 16 palette colours (themes change them; half-block previews dither to what the terminal shows), `CSI c`
    /// (DA1, last: the sentinel).
    public static let request: [UInt8] = Array(("\u{1B}[16t\u{1B}[14t\u{1B}[?1;1;0S\u{1B}]4;"
        + (0..<16).map { "\($0);?" }.joined(separator: ";") + "\u{1B}\\\u{1B}[c").utf8)

    /// The window size of a terminal, nil when `fd` is not one.
    public static func windowSize(fd: Int32) -> WindowSize? {
        var ws = winsize()
        guard ioctl(fd, UInt(TIOCGWINSZ), &ws) == 0, ws.ws_col > 0, ws.ws_row > 0 else { return nil }
        return WindowSize(columns: Int(ws.ws_col), rows: Int(ws.ws_row), pixelWidth: Int(ws.ws_xpixel),
                          pixelHeight: Int(ws.ws_ypixel))
    }

    /// Sends the probe on `output` and reads answers from `input` (both the terminal; often the same /dev/tty fd)
    /// for at most `timeoutMilliseconds`. The input's terminal mode is switched to non-canonical without echo for
    /// the duration (so answers are neither line-buffered nor printed) and restored before returning. nil when
    /// `input` is not a terminal or the request cannot be written. Answers without DA1 mean the time ran out; answers
    /// that arrive later reach the caller's input, whose key parser should drop CSI sequences it does not know.
    /// Keys typed meanwhile are returned in `otherInput`.
    public static func run(input: Int32, output: Int32, timeoutMilliseconds: Int = 200) -> ProbeAnswers? {
        guard isatty(input) == 1 else { return nil }
        var saved = termios()
        guard tcgetattr(input, &saved) == 0 else { return nil }
        var quiet = saved
        quiet.c_lflag &= ~tcflag_t(ICANON | ECHO)
        withUnsafeMutableBytes(of: &quiet.c_cc) { cc in
            cc[Int(VMIN)] = 0
            cc[Int(VTIME)] = 0
        }
        guard tcsetattr(input, TCSANOW, &quiet) == 0 else { return nil }
        defer { _ = tcsetattr(input, TCSANOW, &saved) }

        guard writeAll(output, request) else { return nil }
        let deadline = now() + Int64(timeoutMilliseconds) * 1_000_000
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 256)
        while true {
            let left = (deadline - now()) / 1_000_000
            if left <= 0 { break }
            var pfd = pollfd(fd: input, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, Int32(left))
            if ready < 0 {
                if errno == EINTR { continue }
                break
            }
            if ready == 0 { break }
            let n = chunk.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
            if n <= 0 { break }
            received.append(contentsOf: chunk[0..<n])
            if ProbeAnswers.parse(received).isComplete { break }
        }
        return ProbeAnswers.parse(received)
    }

    /// Window size, probe (skipped for `TERM=dumb`, where escape sequences would be printed as text) and
    /// environment together; and the keys typed while the probe ran, which belong to the program's input.
    public static func capabilities(input: Int32, output: Int32, environment: [String: String],
                                    timeoutMilliseconds: Int = 200) -> (capabilities: TerminalCapabilities, typedAhead: [UInt8]) {
        let window = windowSize(fd: output) ?? windowSize(fd: input)
        let dumb = environment["TERM"] == "dumb"
        let answers = dumb ? nil : run(input: input, output: output, timeoutMilliseconds: timeoutMilliseconds)
        return (TerminalCapabilities.detect(answers: answers, window: window, environment: environment),
                answers?.otherInput ?? [])
    }

    private static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress.map { $0 + offset }, bytes.count - offset) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            offset += n
        }
        return true
    }

    private static func now() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }
}
