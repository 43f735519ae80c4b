#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

// State the signal handlers read. Written only on the main path before handlers are installed (and on resize);
// handlers only read it, and only call async-signal-safe functions (tcsetattr, write, signal, raise).
nonisolated(unsafe) private var savedMode = termios()
nonisolated(unsafe) private var rawActive: Int32 = 0
nonisolated(unsafe) private var restoreBuffer = UnsafeMutablePointer<UInt8>.allocate(capacity: 64)
nonisolated(unsafe) private var restoreLength = 0
nonisolated(unsafe) private var winchPipe: (read: Int32, write: Int32) = (-1, -1)

private func restoreTerminalNow() {
    guard rawActive != 0 else { return }
    rawActive = 0
    // Never wait on a terminal nobody reads any more (a closed tmux pane, a dead ssh link): non-blocking write,
    // and TCSANOW rather than waiting for output to drain.
    let flags = fcntl(STDOUT_FILENO, F_GETFL)
    if flags >= 0 { _ = fcntl(STDOUT_FILENO, F_SETFL, flags | O_NONBLOCK) }
    _ = write(STDOUT_FILENO, restoreBuffer, restoreLength)
    if flags >= 0 { _ = fcntl(STDOUT_FILENO, F_SETFL, flags) }
    _ = tcsetattr(STDIN_FILENO, TCSANOW, &savedMode)
}

/// Raw mode with a guaranteed way back: `atexit`, and handlers for the signals that end the process (also crash
/// signals, best effort: the handler only does async-signal-safe calls, then re-raises with the default action).
public enum Terminal {
    public static var isInteractive: Bool { isatty(STDIN_FILENO) == 1 && isatty(STDOUT_FILENO) == 1 }

    /// Switches stdin to raw mode (no echo, no line buffering, no signals from keys: Ctrl-C arrives as a byte) and
    /// installs the restore paths. Returns false when stdin is not a terminal.
    @discardableResult
    public static func enterRawMode(rows: Int) -> Bool {
        guard isatty(STDIN_FILENO) == 1, tcgetattr(STDIN_FILENO, &savedMode) == 0 else { return false }
        setRestoreRows(rows)
        var raw = savedMode
        raw.c_iflag &= ~tcflag_t(BRKINT | ICRNL | INPCK | ISTRIP | IXON)
        raw.c_oflag &= ~tcflag_t(OPOST)
        raw.c_cflag |= tcflag_t(CS8)
        raw.c_lflag &= ~tcflag_t(ECHO | ICANON | IEXTEN | ISIG)
        withUnsafeMutableBytes(of: &raw.c_cc) { cc in
            cc[Int(VMIN)] = 1
            cc[Int(VTIME)] = 0
        }
        rawActive = 1
        atexit { restoreTerminalNow() }
        for signal in [SIGTERM, SIGHUP, SIGQUIT, SIGINT, SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP] {
            var action = sigaction()
            #if canImport(Glibc)
            action.__sigaction_handler.sa_handler = { sig in
                restoreTerminalNow()
                Glibc.signal(sig, SIG_DFL)
                raise(sig)
            }
            #endif
            action.sa_flags = 0
            sigemptyset(&action.sa_mask)
            sigaction(signal, &action, nil)
        }
        // TCSANOW, not TCSAFLUSH: keys typed while the client started are the user's first input, not noise.
        guard tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0 else {
            rawActive = 0
            return false
        }
        return true
    }

    /// Gives the terminal back now (normal exit path; `atexit` would do it too).
    public static func restore() {
        restoreTerminalNow()
    }

    /// The restore bytes put the cursor below the last row; called again when the window size changes.
    public static func setRestoreRows(_ rows: Int) {
        let bytes = Screen.restoreBytes(rows: rows).prefix(64)
        restoreBuffer.update(from: Array(bytes), count: bytes.count)
        restoreLength = bytes.count
    }

    /// Columns and rows of the terminal (80x24 when not a terminal).
    public static func size() -> (columns: Int, rows: Int) {
        var ws = winsize()
        if ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &ws) == 0, ws.ws_col > 0, ws.ws_row > 0 {
            return (Int(ws.ws_col), Int(ws.ws_row))
        }
        return (80, 24)
    }

    /// Calls `handler` (on a thread of its own) whenever the window size changes. A self-pipe: the signal handler
    /// only writes a byte.
    public static func onResize(_ handler: @escaping @Sendable () -> Void) {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { return }
        winchPipe = (fds[0], fds[1])
        var action = sigaction()
        #if canImport(Glibc)
        action.__sigaction_handler.sa_handler = { _ in
            var byte: UInt8 = 1
            _ = Glibc.write(winchPipe.write, &byte, 1)
        }
        #endif
        action.sa_flags = SA_RESTART
        sigemptyset(&action.sa_mask)
        sigaction(SIGWINCH, &action, nil)
        let readEnd = fds[0]
        let thread = Thread {
            var buffer = [UInt8](repeating: 0, count: 16)
            while true {
                let n = read(readEnd, &buffer, buffer.count)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
                handler()
            }
        }
        thread.start()
    }

    /// Reads stdin on a thread of its own, so typing never waits for the network (or the other way round).
    public static func inputStream() -> AsyncStream<[UInt8]> {
        let (stream, continuation) = AsyncStream.makeStream(of: [UInt8].self)
        let thread = Thread {
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = read(STDIN_FILENO, &buffer, buffer.count)
                if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
                if n <= 0 { continuation.finish(); return }
                continuation.yield(Array(buffer[0..<n]))
            }
        }
        thread.start()
        return stream
    }

    /// Writes all bytes to stdout (the terminal output layer: the only place the client prints).
    public static func write(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(STDOUT_FILENO, $0.baseAddress.map { $0 + offset }, bytes.count - offset) }
            if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
            if n <= 0 { return }
            offset += n
        }
    }
}
