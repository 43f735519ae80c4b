import Foundation

/// Where the embedded defaults keep their files: `chat.sqlite` (with its WAL files) and the `media/` store, in one
/// directory (the working directory unless `--data-dir` says otherwise). One definition for the server,
/// `chat-admin` and `chat-bench`.
public struct DataDirectory: Sendable, Hashable {
    public var path: String

    public init(_ path: String) {
        self.path = path
    }

    public var databasePath: String { URL(fileURLWithPath: path).appendingPathComponent("chat.sqlite").path }
    public var mediaPath: String { URL(fileURLWithPath: path).appendingPathComponent("media").path }
}
