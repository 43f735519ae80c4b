import NIOCore
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// The media store's threads for blocking file and CPU work (hashing, writing, sniffing, thumbnailing): one per core,
/// shared by every store in the process so the bound holds process-wide, and never an event loop or the Swift
/// cooperative pool, so a large upload does not slow anyone's chat.
enum MediaWorkers {
    static let pool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: max(2, System.coreCount))
        pool.start()
        return pool
    }()

    /// Runs `body` on the pool; `stopped` is the error when the pool no longer runs work.
    static func run<T: Sendable, Failure: Error>(_ body: @escaping @Sendable () -> Result<T, Failure>,
                                                stopped: @autoclosure () -> Failure) async throws(Failure) -> T {
        let result: Result<T, Failure>
        do {
            result = try await pool.runIfActive(body)
        } catch {
            throw stopped()
        }
        return try result.get()
    }
}

extension MediaStore {
    /// Runs blocking file or CPU work on the media pool, for callers outside the store such as `chat-admin`'s
    /// maintenance commands.
    public static func runBlocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await MediaWorkers.pool.runIfActive(body)
    }
}

extension BlobStorageError {
    static var poolStopped: BlobStorageError { .io(operation: "run", path: "the media worker pool", errno: ECANCELED) }
}
