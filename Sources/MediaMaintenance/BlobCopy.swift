import Crypto
import MediaStore
#if canImport(Glibc)
import Glibc
#endif

/// A stored blob streamed through `BlobStorage.read` into a local file, hashed on the way, so maintenance works on
/// any storage without knowing where its bytes live (`media strip-metadata`, `media migrate`).
enum BlobCopy {
    /// The copy's SHA-256 (lowercase hex) and size, or nil when there is no such object.
    struct Digest: Sendable, Equatable {
        var sha256: String
        var size: Int64
    }

    /// Why a copy failed: reading the stored object, or writing the local file. Kept apart because a bad object is
    /// that object's problem, while a failing local disk stops the whole run.
    enum Failure: Error {
        case read(any Error)
        case write(BlobStorageError)

        var cause: any Error {
            switch self {
            case .read(let error): error
            case .write(let error): error
            }
        }
    }

    /// Copies `key` of `storage` to a new file at `path` (replacing one there).
    static func toFile(_ key: BlobKey, from storage: any BlobStorage, path: String) async throws(Failure) -> Digest? {
        let fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw .write(.io(operation: "create", path: path, errno: errno)) }
        defer { close(fd) }
        do {
            return try await storage.read(key, range: nil) { chunks in
                var hasher = SHA256()
                var written: Int64 = 0
                for try await chunk in chunks {
                    let bytes = Array(chunk.readableBytesView)
                    hasher.update(data: bytes)
                    let failed = try await MediaStore.runBlocking { bytes.withUnsafeBytes { POSIXFileWriter().write(fd: fd, bytes: $0) } }
                    if failed != 0 { throw Failure.write(.io(operation: "write", path: path, errno: failed)) }
                    written += Int64(bytes.count)
                }
                return Digest(sha256: FileHashing.hex(hasher.finalize()), size: written)
            }
        } catch BlobStorageError.notFound {
            return nil
        } catch let failure as Failure {
            throw failure
        } catch {
            throw .read(error)
        }
    }
}
