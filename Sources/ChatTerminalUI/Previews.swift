import Foundation
import ImageBuffer
import TerminalGraphics
import Thumbnailer

/// Errors of `chat-client preview`.
public struct PreviewError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// How previews are drawn in this terminal: decided once at start-up (probe, environment, `--graphics`).
public struct PreviewGraphics: Sendable {
    public var mode: GraphicsMode
    public var capabilities: TerminalCapabilities
    public var renderer = PreviewRenderer()
    /// Keys typed while the probe waited for the terminal's answers: the start of the user's input.
    public var typedAhead: [UInt8] = []

    public static let disabled = PreviewGraphics(mode: .none, capabilities: TerminalCapabilities())

    public init(mode: GraphicsMode, capabilities: TerminalCapabilities) {
        self.mode = mode
        self.capabilities = capabilities
    }

    /// Probes the terminal (200 ms at most, or `CHAT_PROBE_TIMEOUT_MS` for links slower than that, e.g. ssh across
    /// continents; a terminal that answers ends the probe at once) unless the mode makes it pointless. Call before
    /// raw mode and before anything else reads stdin.
    public static func detect(argument: String, environment: [String: String]) throws(PreviewError) -> PreviewGraphics {
        guard let mode = GraphicsMode(argument: argument) else {
            throw PreviewError("--graphics must be one of auto, sixel, blocks, ascii, none (not \(argument))")
        }
        let interactive = isatty(STDIN_FILENO) == 1 && isatty(STDOUT_FILENO) == 1
        let needsProbe = mode == .auto || mode == .sixel
        if interactive && needsProbe {
            let budget = environment["CHAT_PROBE_TIMEOUT_MS"].flatMap { Int($0) }.map { min(10_000, max(50, $0)) } ?? 200
            let probed = TerminalProbe.capabilities(input: STDIN_FILENO, output: STDOUT_FILENO, environment: environment,
                                                    timeoutMilliseconds: budget)
            var graphics = PreviewGraphics(mode: mode, capabilities: probed.capabilities)
            graphics.typedAhead = probed.typedAhead
            return graphics
        }
        let capabilities = TerminalCapabilities.detect(answers: nil, window: TerminalProbe.windowSize(fd: STDOUT_FILENO),
                                                       environment: environment)
        return PreviewGraphics(mode: mode, capabilities: capabilities)
    }

    public var enabled: Bool { capabilities.resolve(mode) != .none }

    func sized(columns: Int, rows: Int) -> TerminalCapabilities {
        var caps = capabilities
        caps.columns = max(1, columns)
        caps.rows = max(3, rows)
        return caps
    }

    /// Rows a preview of a `width` x `height` picture will take: reserved while it downloads.
    public func rows(width: Int, height: Int, columns: Int, rows: Int) -> Int {
        renderer.layout(imageWidth: width, imageHeight: height, mode: mode, capabilities: sized(columns: columns, rows: rows),
                        maxColumns: columns)?.rows ?? 0
    }

    /// Bytes for a picture, as `chat-client preview` prints them and the chat draws them.
    public func bytes(for image: RGBAImage, columns: Int, rows: Int) -> [UInt8] {
        renderer.render(image: image, mode: mode, capabilities: sized(columns: columns, rows: rows), maxColumns: columns)
    }

    /// Display lines of a preview: one per text row, of text or of a picture.
    public func lines(for image: RGBAImage, id: String, columns: Int, rows: Int) -> [DisplayLine] {
        let caps = sized(columns: columns, rows: rows)
        guard let preview = renderer.renderPreview(image: image, mode: mode, capabilities: caps, maxColumns: columns)
        else { return [] }
        switch preview.content {
        case .sixel(let picture):
            let count = preview.layout.rows
            return (0..<count).map {
                DisplayLine(picture: PictureRow(id: id, row: $0, rows: count, cellHeight: caps.cellHeight, picture: picture))
            }
        case .text(let lines):
            return lines.map { DisplayLine(String(decoding: $0, as: UTF8.self) + "\u{1B}[0m") }
        }
    }
}

/// `chat-client preview FILE`: the same `fit320` thumbnail the server makes, then the same rendering as the chat.
public enum LocalPreview {
    public static func render(path: String, graphics: PreviewGraphics, columns: Int?) throws(PreviewError) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PreviewError("cannot read \(path): no such file, a directory, or no permission")
        }
        let thumbnailer = Thumbnailer()
        let image: RGBAImage
        do {
            let thumbnail = try thumbnailer.makeThumbnail(from: Array(data), spec: .fit320)
            image = try thumbnailer.decode(thumbnail.bytes)
        } catch {
            throw PreviewError("\(path): \(error)")
        }
        let size = Terminal.size()
        return graphics.bytes(for: image, columns: columns ?? size.columns, rows: size.rows)
    }
}
