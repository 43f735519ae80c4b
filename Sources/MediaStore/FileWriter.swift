#if canImport(Glibc)
import Glibc
#endif

/// How the store writes and syncs upload files. The default is plain POSIX; tests substitute one that fails like a
/// full disk, so the clean-up paths run for real without filling one.
public protocol MediaFileWriter: Sendable {
    /// Writes all of `bytes` at `fd`'s position. Returns 0, or the `errno` of the failure.
    func write(fd: Int32, bytes: UnsafeRawBufferPointer) -> Int32
    /// `fsync`s `fd`. Returns 0, or the `errno` of the failure.
    func sync(fd: Int32) -> Int32
}

public struct POSIXFileWriter: MediaFileWriter {
    public init() {}

    public func write(fd: Int32, bytes: UnsafeRawBufferPointer) -> Int32 {
        guard let base = bytes.baseAddress else { return 0 }
        var offset = 0
        while offset < bytes.count {
            let written = Glibc.write(fd, base + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                return errno
            }
            offset += written
        }
        return 0
    }

    public func sync(fd: Int32) -> Int32 {
        fsync(fd) == 0 ? 0 : errno
    }
}

/// Small POSIX helpers; each returns 0 or an errno.
enum POSIX {
    static func makeDirectories(_ path: String, mode: mode_t = 0o750) -> (errno: Int32, created: [String]) {
        var created: [String] = []
        var current = ""
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            current += "/" + component
            if mkdir(current, mode) == 0 {
                created.append(current)
            } else if errno != EEXIST {
                return (errno, created)
            }
        }
        return (0, created)
    }

    /// Syncs a file that is already closed, through `writer` (so tests can make it fail).
    static func syncFile(_ path: String, with writer: any MediaFileWriter) -> Int32 {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return errno }
        defer { close(fd) }
        return writer.sync(fd: fd)
    }

    static func syncDirectory(_ path: String) -> Int32 {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return errno }
        defer { close(fd) }
        return fsync(fd) == 0 ? 0 : errno
    }

    static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// Reads up to `count` bytes from the start of the file.
    static func readPrefix(_ path: String, count: Int) -> (errno: Int32, bytes: [UInt8]) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return (errno, []) }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let n = bytes.withUnsafeMutableBytes { buffer -> Int in
                guard let base = buffer.baseAddress else { return 0 }
                return pread(fd, base + filled, count - filled, off_t(filled))
            }
            if n < 0 {
                if errno == EINTR { continue }
                return (errno, [])
            }
            if n == 0 { break }
            filled += n
        }
        bytes.removeSubrange(filled...)
        return (0, bytes)
    }

    /// Writes a small file atomically and durably: temporary name, fsync, rename, fsync of the directory.
    static func writeAtomically(_ bytes: [UInt8], to path: String, temporary: String, writer: any MediaFileWriter) -> (operation: String, errno: Int32)? {
        let fd = open(temporary, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o640)
        guard fd >= 0 else { return ("create \(temporary)", errno) }
        var failure: (String, Int32)?
        let writeError = bytes.withUnsafeBytes { writer.write(fd: fd, bytes: $0) }
        if writeError != 0 {
            failure = ("write thumbnail", writeError)
        } else if case let syncError = writer.sync(fd: fd), syncError != 0 {
            failure = ("fsync thumbnail", syncError)
        }
        close(fd)
        if failure == nil, rename(temporary, path) != 0 { failure = ("rename thumbnail", errno) }
        if let failure {
            unlink(temporary)
            return failure
        }
        let syncError = syncDirectory(parent(of: path))
        return syncError == 0 ? nil : ("fsync directory", syncError)
    }
}
