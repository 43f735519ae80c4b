import NIOCore
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

extension LocalBlobStorage {
    public func open(_ key: BlobKey, range: Range<Int>?) async throws(BlobStorageError) -> OpenedObject? {
        let path = self.path(key)
        let opened: Result<OpenFile?, BlobStorageError>
        do {
            opened = try await NIOThreadPool.singleton.runIfActive { () -> Result<OpenFile?, BlobStorageError> in
                let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
                guard fd >= 0 else {
                    return errno == ENOENT || errno == ENOTDIR ? .success(nil) : .failure(.io(operation: "open", path: path, errno: errno))
                }
                var info = stat()
                guard fstat(fd, &info) == 0 else {
                    let code = errno
                    close(fd)
                    return .failure(.io(operation: "stat", path: path, errno: code))
                }
                return .success(OpenFile(fd: fd, size: Int(info.st_size), path: path))
            }
        } catch {
            throw .poolStopped
        }
        guard let file = try opened.get() else { return nil }
        let whole = 0..<file.size
        let served = range.map { $0.clamped(to: whole) } ?? whole
        return OpenedObject(size: file.size, range: served, bytes: BlobByteStream(FileRangeChunks(file: file, range: served)))
    }
}

/// A file opened for one answer, closed when the last reference goes: read to its end, or dropped unread (a client
/// that went away before the body was sent).
final class OpenFile: Sendable {
    let fd: Int32
    let size: Int
    let path: String

    init(fd: Int32, size: Int, path: String) {
        self.fd = fd
        self.size = size
        self.path = path
    }

    deinit { close(fd) }
}

/// Bytes `range` of an open file, one chunk read (with `pread`, on NIO's blocking pool) each time one is asked for.
struct FileRangeChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let file: OpenFile
    let range: Range<Int>

    struct AsyncIterator: AsyncIteratorProtocol {
        let file: OpenFile
        var offset: Int
        let end: Int

        mutating func next() async throws -> ByteBuffer? {
            guard offset < end else { return nil }
            let file = self.file, at = offset, count = Swift.min(LocalBlobStorage.chunkLength, end - offset)
            let chunk = try await NIOThreadPool.singleton.runIfActive { () -> Result<ByteBuffer, BlobStorageError> in
                var buffer = ByteBufferAllocator().buffer(capacity: count)
                var failure: Int32 = 0
                buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { pointer in
                    let read = pread(file.fd, pointer.baseAddress, count, off_t(at))
                    if read < 0 { failure = errno }
                    return Swift.max(read, 0)
                }
                if failure != 0 { return .failure(.io(operation: "read", path: file.path, errno: failure)) }
                // Shorter than when it was opened: the answer's length is promised, so this is an error.
                if buffer.readableBytes == 0 { return .failure(.io(operation: "read", path: file.path, errno: EIO)) }
                return .success(buffer)
            }.get()
            offset += chunk.readableBytes
            return chunk
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(file: file, offset: range.lowerBound, end: range.upperBound) }
}
