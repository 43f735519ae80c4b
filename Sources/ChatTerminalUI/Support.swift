import Foundation
import Logging

/// Reconnect delays: exponential from `base`, capped, with "equal jitter" (half fixed, half random) so many clients
/// cut off at once do not come back in lockstep.
public struct Backoff: Sendable {
    public var base: Double
    public var cap: Double
    public private(set) var failures = 0

    public init(base: Double = 0.5, cap: Double = 30) {
        self.base = base
        self.cap = cap
    }

    /// The delay before the next attempt, in seconds.
    public mutating func next(random: Double = Double.random(in: 0...1)) -> Double {
        let ceiling = min(cap, base * pow(2, Double(min(failures, 30))))
        failures += 1
        return ceiling / 2 + ceiling / 2 * random
    }

    public mutating func reset() { failures = 0 }
}

/// Log lines to a file (`--log-file` or `CHAT_CLIENT_LOG`), never to the terminal the UI draws on.
public struct FileLogHandler: LogHandler {
    private let handle: FileHandle?
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    private let label: String

    public init(label: String, path: String) {
        self.label = label
        if !FileManager.default.fileExists(atPath: path) {
            _ = FileManager.default.createFile(atPath: path, contents: nil)
        }
        handle = FileHandle(forWritingAtPath: path)
        _ = try? handle?.seekToEnd()
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let all = metadata.merging(event.metadata ?? [:]) { $1 }
        let extra = all.isEmpty ? "" : " " + all.map { "\($0)=\($1)" }.sorted().joined(separator: " ")
        let line = "\(Date()) \(event.level) \(label): \(event.message)\(extra)\n"
        try? handle?.write(contentsOf: Data(line.utf8))
    }
}
