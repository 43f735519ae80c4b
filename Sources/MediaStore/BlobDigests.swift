import Crypto
import NIOCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Re-hashing stored objects (`media verify`).
public enum BlobDigests {
    /// Any storage: each object streamed through `read` and hashed buffer by buffer, on the media pool.
    public static func streaming(_ objects: [StoredObject], in storage: some BlobStorage,
                                 progress: @escaping @Sendable (Int64) -> Void) async -> [Result<String?, BlobStorageError>] {
        var results: [Result<String?, BlobStorageError>] = []
        var done: Int64 = 0
        for object in objects {
            guard let key = object.key else {
                results.append(.failure(.invalidKey("\(object.location) is not a stored object's name")))
                continue
            }
            do {
                let hex = try await storage.read(key, range: nil) { chunks in
                    var box = SendableHasher(hasher: SHA256())
                    for try await chunk in chunks {
                        let current = box
                        box = try await MediaStore.runBlocking {
                            var next = current
                            chunk.withUnsafeReadableBytes { next.hasher.update(bufferPointer: $0) }
                            return next
                        }
                    }
                    return FileHashing.hex(box.hasher.finalize())
                }
                results.append(.success(hex))
            } catch BlobStorageError.notFound {
                results.append(.success(nil))
            } catch let error as BlobStorageError {
                results.append(.failure(error))
            } catch {
                results.append(.failure(.io(operation: "read", path: object.location, errno: EIO)))
            }
            done += object.size
            progress(done)
        }
        return results
    }

    /// Local files: on every core of the media pool, one job per core taking files in turn (so large and small
    /// files balance), each read with `pread` into one buffer.
    static func local(_ objects: [StoredObject], progress: @escaping @Sendable (Int64) -> Void) async -> [Result<String?, BlobStorageError>] {
        let counters = Counters()
        let workers = max(2, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        let parts = await withTaskGroup(of: [(Int, Result<String?, BlobStorageError>)].self) { group in
            for _ in 0..<workers {
                group.addTask {
                    (try? await MediaStore.runBlocking {
                        var results: [(Int, Result<String?, BlobStorageError>)] = []
                        var buffer = [UInt8](repeating: 0, count: 1 << 20)
                        while true {
                            let index = counters.next.wrappingAdd(1, ordering: .relaxed).oldValue
                            guard index < objects.count else { break }
                            results.append((index, hash(objects[index].location, buffer: &buffer)))
                            progress(counters.bytes.wrappingAdd(objects[index].size, ordering: .relaxed).newValue)
                        }
                        return results
                    }) ?? []
                }
            }
            var all: [(Int, Result<String?, BlobStorageError>)] = []
            for await part in group { all += part }
            return all
        }
        var ordered = [Result<String?, BlobStorageError>](repeating: .failure(.poolStopped), count: objects.count)
        for (index, result) in parts { ordered[index] = result }
        return ordered
    }

    /// Shared by the hashing workers: the next file to take, and bytes hashed so far.
    private final class Counters: Sendable {
        let next = Atomic<Int>(0)
        let bytes = Atomic<Int64>(0)
    }

    private static func hash(_ path: String, buffer: inout [UInt8]) -> Result<String?, BlobStorageError> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            // Removed since the listing (a concurrent prune): nothing to judge.
            return errno == ENOENT ? .success(nil) : .failure(.io(operation: "open", path: path, errno: errno))
        }
        defer { close(fd) }
        posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL)
        var hasher = SHA256()
        switch FileHashing.update(&hasher, from: fd, buffer: &buffer) {
        case .success: return .success(FileHashing.hex(hasher.finalize()))
        case .failure(let error): return .failure(.io(operation: "read", path: path, errno: error.code))
        }
    }
}
