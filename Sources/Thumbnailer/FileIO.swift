#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Plain POSIX file access: keeps Foundation out of the thumbnailer (process start-up and memory matter for the
/// command-line tool, which is compared against vipsthumbnail).
enum FileIO {
    static func errorMessage(_ code: Int32) -> String {
        guard let s = strerror(code) else { return "error \(code)" }
        return String(cString: s)
    }

    /// Reads a whole file into a new buffer (read(2), not mmap: a file truncated under us cannot SIGBUS).
    static func read(path: String, maxBytes: Int) throws(ThumbnailError) -> InputBytes {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let e = errno
            throw .fileError(path: path, operation: "open", errno: e, message: errorMessage(e))
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno
            throw .fileError(path: path, operation: "stat", errno: e, message: errorMessage(e))
        }
        let isRegular = (st.st_mode & S_IFMT) == S_IFREG
        let expected = isRegular ? Int(st.st_size) : 0
        if expected > maxBytes { throw .inputTooLarge(bytes: expected, limit: maxBytes) }
        // Regular files: one buffer of the right size (+1 byte to see EOF). Pipes: grow as needed.
        var capacity = isRegular ? expected + 1 : 1 << 20
        var buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        var count = 0
        while true {
            if count == capacity {
                if count > maxBytes {
                    buffer.deallocate()
                    throw .inputTooLarge(bytes: count, limit: maxBytes)
                }
                let bigger = UnsafeMutableRawPointer.allocate(byteCount: capacity * 2, alignment: 16)
                bigger.copyMemory(from: buffer, byteCount: count)
                buffer.deallocate()
                buffer = bigger
                capacity *= 2
            }
            let n = posixRead(fd, buffer + count, capacity - count)
            if n < 0 {
                let e = errno
                if e == EINTR { continue }
                buffer.deallocate()
                throw .fileError(path: path, operation: "read", errno: e, message: errorMessage(e))
            }
            if n == 0 { break }
            count += n
        }
        if count > maxBytes {
            buffer.deallocate()
            throw .inputTooLarge(bytes: count, limit: maxBytes)
        }
        if count == 0 {
            buffer.deallocate()
            throw .emptyInput
        }
        return InputBytes(owning: buffer, count: count)
    }

    /// Writes to a temporary file next to `path` and renames it, so readers never see a partial thumbnail.
    static func writeAtomically(path: String, bytes: [UInt8]) throws(ThumbnailError) {
        let tmp = "\(path).tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            let e = errno
            throw .fileError(path: tmp, operation: "create", errno: e, message: errorMessage(e))
        }
        var failure: (String, Int32)?
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count, let base = raw.baseAddress {
                let n = write(fd, base + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = ("write", errno)
                    return
                }
                offset += n
            }
        }
        if close(fd) != 0, failure == nil { failure = ("close", errno) }
        if failure == nil, rename(tmp, path) != 0 { failure = ("rename to \(path)", errno) }
        if let (operation, code) = failure {
            unlink(tmp)
            throw .fileError(path: tmp, operation: operation, errno: code, message: errorMessage(code))
        }
    }
}

/// `read` is shadowed by `FileIO.read` inside the enum.
@inline(__always)
private func posixRead(_ fd: Int32, _ buf: UnsafeMutableRawPointer, _ count: Int) -> Int {
    read(fd, buf, count)
}
