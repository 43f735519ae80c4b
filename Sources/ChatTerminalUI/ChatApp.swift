import ChatClient
import ChatProtocol
import Foundation
import Logging

/// Options of an interactive session.
public struct ClientOptions: Sendable {
    public var user: String
    public var token: String
    /// `ws://host:port/ws` or `wss://...`.
    public var server: String
    public var graphics: String
    public var environment: [String: String]

    public init(user: String, token: String, server: String, graphics: String = "auto",
                environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.user = user
        self.token = token
        self.server = server
        self.graphics = graphics
        self.environment = environment
    }
}

/// Why a session ended with an error.
public struct ClientExit: Error, Sendable, CustomStringConvertible {
    public var description: String
    public var code: Int32
}

/// The interactive client: owns the chat state, the line editor and the screen; takes keys from the input thread,
/// frames from the connection and resizes from SIGWINCH, one at a time (actor), and writes the screen.
public actor ChatApp {
    private var state: ChatState
    private var editor = LineEditor()
    private var decoder = KeyDecoder()
    private var screen: Screen
    let style: Style
    let options: ClientOptions
    let logger: Logger
    private var connection: ChatConnection?
    private var quitting = false
    private var resendScheduled = false
    private var exitError: ClientExit?
    private let quitSignal: AsyncStream<Void>.Continuation
    private let quitStream: AsyncStream<Void>
    private var attention: Set<String> = []
    /// Lines the view is scrolled up from the bottom (PageUp/PageDown, or after `/history`).
    private var scrollBack = 0
    private var scrollToTop = false
    var media = MediaState()
    var graphics = PreviewGraphics.disabled

    public init(options: ClientOptions, logger: Logger) {
        self.options = options
        self.logger = logger
        state = ChatState(user: options.user)
        let size = Terminal.size()
        screen = Screen(columns: size.columns, rows: size.rows)
        let env = options.environment
        style = Style(colors: (env["NO_COLOR"] ?? "").isEmpty && env["TERM"] != "dumb")
        (quitStream, quitSignal) = AsyncStream.makeStream(of: Void.self)
    }

    /// Runs until the user quits; the terminal is restored on every way out.
    public func run() async throws(ClientExit) {
        // The probe reads the terminal's answers from stdin: before raw mode and the input thread.
        do {
            graphics = try PreviewGraphics.detect(argument: options.graphics, environment: options.environment)
        } catch {
            throw ClientExit(description: error.description, code: 64)
        }
        // Listening for resizes before reading the size: a resize in between (a terminal that is still settling, a
        // tmux split) would otherwise leave the screen drawn for the old size until the next one. A resize handled
        // early waits for this actor, so it runs after the first render and draws again at the right size.
        Terminal.onResize { [weak self] in
            Task { await self?.resized() }
        }
        let size = Terminal.size()
        screen.resize(columns: size.columns, rows: size.rows)
        media.columns = size.columns
        media.rows = size.rows
        Terminal.enterRawMode(rows: size.rows)
        state.addNotice(.info, "connecting to \(options.server) as \(options.user); /help lists commands, Ctrl-C quits")
        render()
        if !graphics.typedAhead.isEmpty { input(graphics.typedAhead) }
        let keys = Task.detached { [self] in
            for await bytes in Terminal.inputStream() { await self.input(bytes) }
            await self.quit()
        }
        let network = Task.detached { [self] in await self.networkLoop() }
        for await _ in quitStream { break }
        network.cancel()
        keys.cancel()
        connection?.close()
        Terminal.write(Screen.restoreBytes(rows: screen.rows))
        Terminal.restore()
        if let exitError { throw exitError }
    }

    private func quit(_ error: ClientExit? = nil) {
        guard !quitting else { return }
        quitting = true
        exitError = error
        quitSignal.yield()
    }

    // MARK: Network

    private func networkLoop() async {
        var backoff = Backoff()
        var attempt = 0
        while !quitting && !Task.isCancelled {
            attempt += 1
            state.status = .connecting(attempt: attempt)
            render()
            let connection = ChatConnection(url: options.server, bearer: options.token, maxFrameSize: 16 << 20,
                                            logger: logger)
            self.connection = connection
            var reason = "connection lost"
            var silent = 0
            do {
                try connection.send(.hello(state.hello()))
            } catch {
                reason = "\(error)"
            }
            receiving: while !quitting {
                switch await Self.next(from: connection) {
                case .frame(let incoming):
                    silent = 0
                    guard let frame = incoming.frame else { continue }
                    if case .welcome = frame {
                        backoff.reset()
                        attempt = 0
                    }
                    handle(frame)
                case .quiet:
                    // Quiet line: ask for a pong; two quiet periods in a row mean the link is dead.
                    silent += 1
                    if silent >= 2 { reason = "no answer from the server"; break receiving }
                    send([.ping(requestId: "keepalive")])
                case .closed(let code, let text):
                    switch code {
                    case CloseCode.authenticationFailed, CloseCode.unsupportedProtocol, CloseCode.sessionRevoked:
                        let message = "the server refused the session (\(code.map(String.init) ?? "?")): \(text ?? "no reason given")"
                        state.connectionFailed(reason: message)
                        render()
                        quit(ClientExit(description: message, code: 2))
                        return
                    default:
                        if let text, !text.isEmpty { reason = "closed: \(text)" }
                        else if let code { reason = "closed (\(code))" }
                    }
                    break receiving
                }
            }
            connection.close()
            self.connection = nil
            guard !quitting else { return }
            mediaConnectionLost()
            let delay = backoff.next()
            // Count down in the status line.
            var left = delay
            while left > 0 && !quitting {
                state.connectionLost(reason: Self.shorten(reason), retryInSeconds: Int(left.rounded(.up)))
                render()
                let step = min(1, left)
                try? await Task.sleep(for: .milliseconds(Int(step * 1000)))
                left -= step
            }
        }
    }

    private enum Received {
        case frame(Incoming)
        case quiet
        case closed(code: UInt16?, reason: String?)
    }

    private static func next(from connection: ChatConnection) async -> Received {
        do {
            return .frame(try await connection.receive(timeout: .seconds(20)))
        } catch {
            switch error {
            case .timeout: return .quiet
            case .closed(let info): return .closed(code: info.code, reason: info.reason)
            case .unexpected(let text): return .closed(code: nil, reason: text)
            }
        }
    }

    private static func shorten(_ reason: String) -> String {
        // NIO's connect errors are long and technical.
        if reason.contains("SingleConnectionFailure") || reason.contains("onnection refused")
            || reason.contains("Connection errors") { return "cannot reach the server" }
        let line = reason.split(separator: "\n").first.map(String.init) ?? reason
        return line.count > 60 ? String(line.prefix(57)) + "..." : line
    }

    private func handle(_ frame: ServerFrame) {
        let before = state.current
        var outcome = state.apply(frame)
        if case .message(let message) = frame, message.conversation != state.current, message.sender != state.user {
            attention.insert(message.conversation)
        }
        if case .synced = frame { resumeUploads() }
        if case .typing(let notice) = frame, notice.active {
            Task {
                try? await Task.sleep(for: .milliseconds(ChatState.typingShownMs + 100))
                self.render()  // the indicator lapses unless news came meanwhile
            }
        }
        mediaHandle(frame)
        send(outcome.frames)
        if let delay = outcome.retryAfter { scheduleResend(after: delay) }
        if outcome.bell { Terminal.write([0x07]) }
        if outcome.showOlder { scrollToTop = true }
        for number in outcome.newAttachments { attachmentSeen(number, state: state) }
        outcome.frames = []
        if before != state.current { screen.invalidate() }
        render()
    }

    /// One timed resend of the pending messages at a time; each refusal schedules the next.
    private func scheduleResend(after delay: Duration) {
        guard !resendScheduled else { return }
        resendScheduled = true
        Task {
            try? await Task.sleep(for: delay)
            self.resendPending()
        }
    }

    private func resendPending() {
        resendScheduled = false
        send(state.resendFrames())
    }

    func send(_ frames: [ClientFrame]) {
        guard let connection else { return }
        for frame in frames {
            do { try connection.send(frame) } catch { logger.error("could not encode frame: \(error)") }
        }
    }

    func sendBinary(_ bytes: [UInt8]) -> Bool {
        guard let connection, state.isOnline else { return false }
        connection.sendBinary(bytes)
        return true
    }

    var isOnline: Bool { state.isOnline }
    var limits: Limits? { state.limits }

    func notice(_ kind: Notice.Kind, _ text: String) {
        state.addNotice(kind, text)
        render()
    }

    func sendAttachmentMessage(_ reference: AttachmentReference, attachment: Attachment, text: String) {
        let outcome = state.sendMessage(text, attachments: [reference], attachmentInfo: [attachment])
        send(outcome.frames)
        render()
    }

    // MARK: Input

    private func input(_ bytes: [UInt8]) {
        for key in decoder.feed(bytes) {
            switch key {
            case .ctrl("l"): screen.invalidate(); continue
            case .pageUp: scrollBack += max(1, screen.messageRows - 2); continue
            case .pageDown: scrollBack = max(0, scrollBack - max(1, screen.messageRows - 2)); continue
            default: break
            }
            switch editor.handle(key) {
            case .none:
                break
            case .changed:
                send(state.inputChanged(editor.text).frames)
            case .quit:
                quit()
                return
            case .complete:
                complete()
            case .submit(let line):
                submit(line)
            }
        }
        render()
    }

    private func submit(_ line: String) {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        if trimmed.hasPrefix("/attach") || trimmed.hasPrefix("/save") {
            mediaCommand(trimmed, state: state)
            return
        }
        let before = state.current
        let outcome = state.submit(line)
        if outcome.quit { quit(); return }
        if !trimmed.hasPrefix("/") { scrollBack = 0 }
        send(outcome.frames)
        if before != state.current {
            if let current = state.current { attention.remove(current) }
            scrollBack = 0
            screen.invalidate()
        }
    }

    private func complete() {
        let (word, start) = editor.wordBeforeCursor
        let candidates = state.completions(for: word, isFirstWord: start == 0, line: editor.text)
        guard !candidates.isEmpty else { return }
        if candidates.count == 1, let only = candidates.first {
            editor.replaceWordBeforeCursor(with: only + " ")
            return
        }
        var common = candidates[0]
        for candidate in candidates.dropFirst() {
            while !candidate.hasPrefix(common) { common.removeLast() }
        }
        if common.count > word.count {
            editor.replaceWordBeforeCursor(with: common)
        } else {
            state.addNotice(.info, candidates.joined(separator: "  "))
        }
    }

    private func resized() {
        let size = Terminal.size()
        screen.resize(columns: size.columns, rows: size.rows)
        Terminal.setRestoreRows(size.rows)
        mediaResized(columns: size.columns, rows: size.rows)
        render()
    }

    // MARK: Drawing

    func render() {
        guard !quitting else { return }
        let formatter = MessageFormatter(style: style, columns: screen.columns, user: state.user)
        var lines: [DisplayLine] = []
        let state = self.state
        for item in state.timeline(for: state.current).reversed() {
            let itemLines = formatter.lines(for: item) { message, index in
                self.mediaLines(for: message, index: index, state: state)
            }
            lines.insert(contentsOf: itemLines, at: 0)
            if lines.count >= screen.messageRows && scrollBack == 0 && !scrollToTop { break }
        }
        if scrollToTop {
            scrollBack = max(0, lines.count - screen.messageRows)
            scrollToTop = false
        }
        scrollBack = min(scrollBack, max(0, lines.count - screen.messageRows))
        if scrollBack > 0 { lines.removeLast(scrollBack) }
        let status = statusLine()
        let prompt = state.isAgent ? "[\(state.current ?? "no conversation")] > " : "> "
        let promptWidth = TextWidth.width(prompt)
        let (visible, cursor) = editor.visible(columns: screen.columns - promptWidth - 1)
        let bytes = screen.render(lines: lines, status: status, prompt: style.bold(prompt), promptWidth: promptWidth,
                                  input: visible, cursorColumn: cursor)
        Terminal.write(bytes)
    }

    private func statusLine() -> String {
        StatusLine(state: state, attention: attention, progress: progressText(), scrollBack: scrollBack)
            .text(columns: screen.columns, style: style)
    }
}
