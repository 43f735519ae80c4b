import CMagic
import Synchronization

/// MIME type sniffing with libmagic. A libmagic handle is not thread-safe, so each call takes a handle from a small
/// owned pool (opening one more when all are busy, at most one per concurrent caller) and puts it back.
public final class MagicSniffer: Sendable {
    /// libmagic only looks at a file's start; larger inputs are cut to this.
    public static let prefixBytes = 64 * 1024

    private struct Handle: @unchecked Sendable {  // used by one thread at a time: taken from and returned to the pool
        let pointer: OpaquePointer
    }

    private let idle = Mutex<[Handle]>([])

    /// Opens one handle to check that libmagic and its database load.
    public init() throws(MediaError) {
        let handle = try Self.open()
        idle.withLock { $0.append(handle) }
    }

    deinit {
        for handle in idle.withLock({ $0 }) { magic_close(handle.pointer) }
    }

    private static func open() throws(MediaError) -> Handle {
        guard let pointer = magic_open(MAGIC_MIME_TYPE | MAGIC_NO_CHECK_COMPRESS | MAGIC_NO_CHECK_TAR) else {
            throw .sniffer("magic_open failed")
        }
        guard magic_load(pointer, nil) == 0 else {
            let reason = magic_error(pointer).map { String(cString: $0) } ?? "unknown error"
            magic_close(pointer)
            throw .sniffer("cannot load the magic database: \(reason)")
        }
        return Handle(pointer: pointer)
    }

    /// The MIME type of a file starting with `bytes` (only the first `prefixBytes` are looked at).
    /// `application/octet-stream` when libmagic cannot say.
    public func mimeType(of bytes: UnsafeRawBufferPointer) -> String {
        guard !bytes.isEmpty, let base = bytes.baseAddress else { return "application/x-empty" }
        let handle: Handle
        if let reused = idle.withLock({ $0.popLast() }) {
            handle = reused
        } else {
            do { handle = try Self.open() } catch { return "application/octet-stream" }
        }
        defer { idle.withLock { $0.append(handle) } }
        guard let result = magic_buffer(handle.pointer, base, min(bytes.count, Self.prefixBytes)) else {
            return "application/octet-stream"
        }
        let type = String(cString: result)
        // libmagic answers a MIME type; anything else (an error text) is not one.
        return type.contains("/") && !type.contains(" ") ? type : "application/octet-stream"
    }

    public func mimeType(of bytes: [UInt8]) -> String {
        bytes.withUnsafeBytes { mimeType(of: $0) }
    }
}
