import ArgumentParser
import ChatTerminalUI
import Foundation
import Logging

@main
struct ChatClientCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat-client",
        abstract: "Terminal client of the support chat.",
        subcommands: [Chat.self, Preview.self],
        defaultSubcommand: Chat.self
    )
}

/// Where diagnostics go: a file when asked for, otherwise nowhere (never the terminal the UI draws on).
func bootstrapLogging(file: String?) {
    let path = file ?? ProcessInfo.processInfo.environment["CHAT_CLIENT_LOG"]
    LoggingSystem.bootstrap { label in
        guard let path, !path.isEmpty else { return SwiftLogNoOpLogHandler() }
        var handler = FileLogHandler(label: label, path: path)
        handler.logLevel = .info
        return handler
    }
}

struct Chat: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat",
        abstract: "Chat as USERNAME (the token's role decides: customer or agent).")

    @Argument(help: "Your username (must be the token's user).")
    var username: String

    @Argument(help: "Your session token (from chat-admin tokens create).")
    var token: String

    @Option(help: "Server WebSocket URL, ws:// or wss://; HOST:PORT is enough.")
    var server = "ws://127.0.0.1:8080/ws"

    @Option(help: "Image previews: auto, sixel, blocks, ascii or none. 'auto' asks the terminal (200 ms at most; set CHAT_PROBE_TIMEOUT_MS on slower links).")
    var graphics = "auto"

    @Option(help: "Write diagnostics to this file (also CHAT_CLIENT_LOG).")
    var logFile: String?

    func validate() throws {
        guard ["auto", "sixel", "blocks", "ascii", "none"].contains(graphics.lowercased()) else {
            throw ValidationError("--graphics must be one of auto, sixel, blocks, ascii, none")
        }
    }

    static func normalize(_ server: String) -> String {
        var url = server
        if !url.contains("://") { url = "ws://" + url }
        if url.hasPrefix("http://") { url = "ws://" + url.dropFirst(7) }
        if url.hasPrefix("https://") { url = "wss://" + url.dropFirst(8) }
        let afterScheme = url.range(of: "://").map { url[$0.upperBound...] } ?? Substring(url)
        if !afterScheme.contains("/") { url += "/ws" }
        return url
    }

    func run() async throws {
        bootstrapLogging(file: logFile)
        let options = ClientOptions(user: username, token: token, server: Self.normalize(server), graphics: graphics)
        let app = ChatApp(options: options, logger: Logger(label: "chat-client"))
        do {
            try await app.run()
        } catch {
            FileHandle.standardError.write(Data("chat-client: \(error.description)\n".utf8))
            throw ExitCode(error.code)
        }
    }
}

struct Preview: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the preview of a local image exactly as the chat shows it (after the same fit320 thumbnail).")

    @Argument(help: "An image file (JPEG or PNG).")
    var file: String

    @Option(help: "auto, sixel, blocks, ascii or none.")
    var graphics = "auto"

    @Option(help: "Columns to use (default: the terminal's width).")
    var width: Int?

    func run() async throws {
        bootstrapLogging(file: nil)
        do {
            let graphics = try PreviewGraphics.detect(argument: graphics, environment: ProcessInfo.processInfo.environment)
            if let width, width < 1 { throw PreviewError("--width must be at least 1") }
            let bytes = try LocalPreview.render(path: file, graphics: graphics, columns: width)
            Terminal.write(bytes)
        } catch let error as PreviewError {
            FileHandle.standardError.write(Data("chat-client preview: \(error.description)\n".utf8))
            throw ExitCode(1)
        }
    }
}
