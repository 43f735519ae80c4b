import ChatStore
import Crypto
import NIOCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// One upload in progress. Its file, hasher and offset change only under the lock, on the store's pool.
final class Upload: Sendable {
    struct Allowance: Sendable {
        var bytes: Int
        /// What to answer when the bytes go past `bytes`.
        var error: MediaError
    }

    // Only touched under `state`'s lock; unchecked because swift-crypto's SHA256 is not marked Sendable.
    struct State: @unchecked Sendable {
        var fd: Int32
        var hasher: SHA256
        var offset: Int
        var claim: UInt64 = 0
        var attached = true
        var finishing = false
        var lastActivity = ContinuousClock.now
    }

    let id: String
    let user: String
    let name: String
    let declaredSize: Int?
    let declaredSHA256: String?
    let path: String
    let allowance: Allowance
    let state: Mutex<State>

    init(record: UploadRecord, path: String, allowance: Allowance, fd: Int32, hasher: SHA256, offset: Int) {
        id = record.id
        user = record.username
        name = record.name
        declaredSize = record.declaredSize
        declaredSHA256 = record.declaredSHA256
        self.path = path
        self.allowance = allowance
        state = Mutex(State(fd: fd, hasher: hasher, offset: offset))
    }

    /// Bytes this upload counts against the daily allowance while in progress.
    var reservedBytes: Int {
        max(declaredSize ?? 0, state.withLock { $0.offset })
    }

    func append(_ bytes: ByteBuffer, claim: UInt64, writer: any MediaFileWriter) -> Result<Int, MediaError> {
        state.withLock { state in
            guard state.claim == claim, !state.finishing, state.fd >= 0 else {
                return .failure(.unknownUpload(id: id, reason: "it was resumed on another connection or is finishing"))
            }
            let end = state.offset + bytes.readableBytes
            if let declared = declaredSize, end > declared { return .failure(.moreThanDeclared(declared: declared)) }
            if end > allowance.bytes { return .failure(allowance.error) }
            let fd = state.fd
            let error = bytes.withUnsafeReadableBytes { writer.write(fd: fd, bytes: $0) }
            guard error == 0 else { return .failure(.storage(operation: "write", errno: error)) }
            bytes.withUnsafeReadableBytes { state.hasher.update(bufferPointer: $0) }
            state.offset = end
            state.lastActivity = .now
            return .success(end)
        }
    }

    /// No more bytes: checks the size, closes the file, returns the hash (lowercase hex) and size.
    func seal(claim: UInt64) -> Result<(String, Int), MediaError> {
        state.withLock { state in
            guard state.claim == claim, !state.finishing, state.fd >= 0 else {
                return .failure(.unknownUpload(id: id, reason: "it was resumed on another connection or is finishing"))
            }
            guard state.offset > 0 else { return .failure(.empty) }
            if let declared = declaredSize, state.offset != declared {
                return .failure(.incomplete(declared: declared, received: state.offset))
            }
            state.finishing = true
            // A fresh modification time: the file keeps it when renamed into `blobs/`, and maintenance (gc, verify)
            // spares files younger than its grace period while their record is being written. No fsync yet: bytes
            // the store already holds are dropped, and only bytes about to be renamed into it need to be durable.
            futimens(state.fd, nil)
            close(state.fd)
            state.fd = -1
            let hash = FileHashing.hex(state.hasher.finalize())
            return .success((hash, state.offset))
        }
    }

    func closeFile() {
        state.withLock { state in
            if state.fd >= 0 { close(state.fd) }
            state.fd = -1
            state.finishing = true
        }
    }
}

/// Carries a hasher from the pool thread that rebuilt it. SHA256 is a copy-on-write value and this copy is not
/// shared, so handing it over is safe; swift-crypto just does not mark it Sendable.
struct SendableHasher: @unchecked Sendable {
    var hasher: SHA256
}


/// Upload ids: "u" and 32 random hexadecimal digits.
enum UploadIds {
    static func make() -> String {
        var generator = SystemRandomNumberGenerator()
        return "u" + (0..<16).map { _ in hexByte(UInt8.random(in: 0...255, using: &generator)) }.joined()
    }

    static func hexByte(_ byte: UInt8) -> String {
        let digits = Array("0123456789abcdef".utf8)
        return String(decoding: [digits[Int(byte >> 4)], digits[Int(byte & 0xF)]], as: UTF8.self)
    }
}
