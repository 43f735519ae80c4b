import ChatProtocol

/// What an upload sends next: a chunk of the file as a binary frame, or `uploadEnd`.
public enum UploadOutgoing: Sendable, Equatable {
    case chunk([UInt8])
    case end(UploadReference)
}

/// The sending side of one upload after `uploadReady`, without I/O: which chunks may go out under the window, where
/// the server is, and when `uploadEnd` is due. `ChatConnection.upload` (awaiting each acknowledgement) and the
/// console (driven by its event loop) both run it, so the protocol's flow control is written once.
public struct UploadSending: Sendable {
    public let uploadId: String
    public let size: Int
    /// Where the server had the upload when this round began (0, or where a resume picks up).
    public let startOffset: Int
    public let chunkSize: Int
    public private(set) var sent: Int
    public private(set) var acknowledged: Int
    public private(set) var ended = false
    private let window: UploadWindow

    /// From `uploadReady`: `offset` is where the server has the upload, `chunkSize` what it recommends;
    /// `maxFrameBytes`, from the server's limits, caps a chunk below the largest frame it accepts.
    public init(uploadId: String, offset: Int, size: Int, chunkSize recommended: Int, window: UploadWindow = UploadWindow(),
                maxFrameBytes: Int? = nil) {
        self.uploadId = uploadId
        self.size = size
        startOffset = offset
        sent = offset
        acknowledged = offset
        var chunk = max(1, recommended)
        if let maxFrameBytes { chunk = max(1, min(chunk, maxFrameBytes - 1024)) }
        chunkSize = chunk
        self.window = window
    }

    /// Whether the window is full: nothing more goes out until the server confirms more.
    public var waitsForAcknowledgement: Bool {
        sent < size && !window.allows(sent: sent, acknowledged: acknowledged)
    }

    /// The server confirmed bytes up to `offset` (`uploadProgress`).
    public mutating func acknowledge(_ offset: Int) {
        acknowledged = max(acknowledged, min(offset, size))
    }

    /// Sends what the window allows of `source`, stopping at `limit` bytes (the whole file by default), then
    /// `uploadEnd` once every byte is out, unless `ending` is false. Stops early when `send` refuses (the connection
    /// is gone); a later round resumes from what the server confirms.
    public mutating func pump(_ source: UploadSource, limit: Int? = nil, ending: Bool = true,
                              send: (UploadOutgoing) -> Bool) throws(UploadError) {
        let end = min(limit ?? size, size)
        if sent < end, window.allows(sent: sent, acknowledged: acknowledged) {
            let reader = try UploadReader(source, from: sent)
            while sent < end, window.allows(sent: sent, acknowledged: acknowledged) {
                guard send(.chunk(try reader.next(min(chunkSize, end - sent)))) else { return }
                sent = reader.offset
            }
        }
        if ending, sent >= size, !ended, send(.end(UploadReference(uploadId: uploadId))) {
            ended = true
        }
    }
}
