import ChatProtocol
import Foundation

/// Why an upload over the chat connection did not finish.
public enum UploadError: Error, Sendable, CustomStringConvertible {
    /// The server answered with an error frame (its code says why; see docs/PROTOCOL.md (Attachments)).
    case rejected(ErrorFrame)
    case connection(ChatConnectionError)
    case source(String)

    public var description: String {
        switch self {
        case .rejected(let frame): "upload refused: \(frame.code.rawValue): \(frame.message)"
        case .connection(let error): error.description
        case .source(let reason): "cannot read the file to upload: \(reason)"
        }
    }
}

/// Bytes to upload: in memory or read from a file chunk by chunk (never loaded whole).
public enum UploadSource: Sendable {
    case bytes([UInt8])
    case file(String)

    public func size() throws(UploadError) -> Int {
        switch self {
        case .bytes(let bytes):
            return bytes.count
        case .file(let path):
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: path), let size = attributes[.size] as? Int else {
                throw .source("\(path) cannot be read")
            }
            return size
        }
    }
}

/// The client's side of upload flow control (docs/PROTOCOL.md, "Uploading over the WebSocket"): bytes go out at
/// most `bytes` ahead of the last offset the server confirmed with `uploadProgress`, so neither side buffers a
/// whole file.
public struct UploadWindow: Sendable {
    public static let defaultBytes = 8 << 20
    public var bytes: Int

    public init(bytes: Int = UploadWindow.defaultBytes) {
        self.bytes = max(1, bytes)
    }

    /// Whether more may be sent with `sent` bytes out and `acknowledged` confirmed.
    public func allows(sent: Int, acknowledged: Int) -> Bool {
        sent - acknowledged < bytes
    }
}

/// An upload's bytes chunk by chunk from an offset; a file is read as it goes, never loaded whole. One per send
/// loop (it holds the open file).
public final class UploadReader {
    private let source: UploadSource
    private let handle: FileHandle?
    public private(set) var offset: Int

    public init(_ source: UploadSource, from offset: Int) throws(UploadError) {
        self.source = source
        self.offset = offset
        if case .file(let path) = source {
            guard let opened = FileHandle(forReadingAtPath: path) else { throw .source("\(path) cannot be opened") }
            do { try opened.seek(toOffset: UInt64(offset)) } catch { throw .source("\(error)") }
            handle = opened
        } else {
            handle = nil
        }
    }

    deinit {
        try? handle?.close()
    }

    /// The next `count` bytes; an error when the source has fewer (a file that shrank since its size was taken).
    public func next(_ count: Int) throws(UploadError) -> [UInt8] {
        let chunk: [UInt8]
        switch source {
        case .bytes(let bytes):
            guard offset + count <= bytes.count else { throw .source("short read") }
            chunk = Array(bytes[offset..<(offset + count)])
        case .file:
            let data: Data?
            do { data = try handle?.read(upToCount: count) } catch { throw .source("\(error)") }
            guard let data, data.count == count else { throw .source("short read: the file changed while it was sent") }
            chunk = [UInt8](data)
        }
        offset += count
        return chunk
    }
}

extension ChatConnection {
    /// Uploads a file: `uploadBegin`, binary chunks, `uploadEnd`. Returns the server's `uploadDone`, which comes
    /// after the file is stored and its thumbnails exist. At most `window` bytes are sent ahead of the server's
    /// progress acknowledgements, so neither side buffers the whole file.
    public func upload(_ source: UploadSource, name: String, sha256: String? = nil, window: Int = UploadWindow.defaultBytes,
                       timeout: Duration = .seconds(60)) async throws(UploadError) -> UploadDone {
        let size = try source.size()
        let ready = try await beginUpload(UploadBegin(requestId: UUID().uuidString, name: name, size: size, sha256: sha256))
        try await sendUploadBytes(source, uploadId: ready.uploadId, from: ready.offset, to: size, chunkSize: ready.chunkSize,
                                  window: window, timeout: timeout)
        return try await endUpload(ready.uploadId, timeout: timeout)
    }

    /// Resumes an interrupted upload on this connection from the offset the server has, and finishes it.
    public func resumeUpload(_ source: UploadSource, uploadId: String, window: Int = UploadWindow.defaultBytes,
                             timeout: Duration = .seconds(60)) async throws(UploadError) -> (offset: Int, done: UploadDone) {
        let size = try source.size()
        let requestId = UUID().uuidString
        do { try send(.uploadResume(UploadResume(uploadId: uploadId, requestId: requestId))) } catch { throw .source("\(error)") }
        let ready = try await awaitUploadFrame(ref: [requestId, uploadId], timeout: timeout) { frame -> UploadReady? in
            if case .uploadReady(let ready) = frame, ready.uploadId == uploadId { return ready }
            return nil
        }
        try await sendUploadBytes(source, uploadId: uploadId, from: ready.offset, to: size, chunkSize: ready.chunkSize,
                                  window: window, timeout: timeout)
        return (ready.offset, try await endUpload(uploadId, timeout: timeout))
    }

    /// Sends `uploadBegin` and waits for `uploadReady`.
    public func beginUpload(_ begin: UploadBegin, timeout: Duration = .seconds(30)) async throws(UploadError) -> UploadReady {
        let requestId = begin.requestId ?? UUID().uuidString
        var begin = begin
        begin.requestId = requestId
        do { try send(.uploadBegin(begin)) } catch { throw .source("\(error)") }
        return try await awaitUploadFrame(ref: [requestId], timeout: timeout) { frame -> UploadReady? in
            if case .uploadReady(let ready) = frame, ready.requestId == requestId { return ready }
            return nil
        }
    }

    /// Sends bytes `start..<end` of `source` as binary frames, keeping at most `window` bytes unacknowledged.
    /// Returns the last acknowledged offset.
    @discardableResult
    public func sendUploadBytes(_ source: UploadSource, uploadId: String, from start: Int, to end: Int, chunkSize: Int,
                                window: Int = UploadWindow.defaultBytes,
                                timeout: Duration = .seconds(60)) async throws(UploadError) -> Int {
        var sending = UploadSending(uploadId: uploadId, offset: start, size: try source.size(), chunkSize: chunkSize,
                                    window: UploadWindow(bytes: window))
        while true {
            try sending.pump(source, limit: end, ending: false) { outgoing in
                if case .chunk(let bytes) = outgoing { sendBinary(bytes) }
                return true
            }
            guard sending.sent < end else { return sending.acknowledged }
            let offset = try await awaitUploadFrame(ref: [uploadId], timeout: timeout) { frame -> Int? in
                if case .uploadProgress(let progress) = frame, progress.uploadId == uploadId { return progress.offset }
                return nil
            }
            sending.acknowledge(offset)
        }
    }

    /// Sends `uploadEnd` and waits for `uploadDone`.
    public func endUpload(_ uploadId: String, timeout: Duration = .seconds(60)) async throws(UploadError) -> UploadDone {
        do { try send(.uploadEnd(UploadReference(uploadId: uploadId))) } catch { throw .source("\(error)") }
        return try await awaitUploadFrame(ref: [uploadId], timeout: timeout) { frame -> UploadDone? in
            if case .uploadDone(let done) = frame, done.uploadId == uploadId { return done }
            return nil
        }
    }

    /// The next frame `match` accepts, or the error frame naming one of `ref`.
    private func awaitUploadFrame<T>(ref: [String], timeout: Duration,
                                     _ match: @escaping (ServerFrame) -> T?) async throws(UploadError) -> T {
        let outcome: Result<T, Rejected>
        do {
            outcome = try await receive(timeout: timeout) { frame -> Result<T, Rejected>? in
                if case .error(let error) = frame, let reference = error.ref, ref.contains(reference) { return .failure(Rejected(frame: error)) }
                return match(frame).map { .success($0) }
            }
        } catch {
            throw .connection(error)
        }
        switch outcome {
        case .success(let value): return value
        case .failure(let rejected): throw .rejected(rejected.frame)
        }
    }
}

/// An error frame carried through `Result`.
private struct Rejected: Error {
    var frame: ErrorFrame
}
