@testable import ChatStorePostgres
import Dispatch
import Synchronization
import Testing

/// `PostgresDatabase.abandoning(after:_:)`: a database operation's deadline holds even when the operation ignores
/// cancellation (the case that once hung a node's shutdown).
@Suite("Operation deadlines", .timeLimit(.minutes(1)))
struct DeadlineTests {
    @Test("the result when it comes in time; nil at the deadline even if the work never answers cancellation; errors pass")
    func deadlines() async throws {
        #expect(try await PostgresDatabase.abandoning(after: .seconds(30)) { 42 } == 42)

        // Work that ignores cancellation and runs for ten seconds.
        let stubborn = Mutex(false)
        let abandoned = try await PostgresDatabase.abandoning(after: .milliseconds(200)) { () -> Int in
            // A wait no cancellation ends, as a pool request stuck after a restart.
            await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                DispatchQueue.global().asyncAfter(deadline: .now() + 10) { done.resume() }
            }
            stubborn.withLock { $0 = true }
            return 1
        }
        #expect(abandoned == nil)
        #expect(!stubborn.withLock { $0 }, "the caller did not wait for the work")

        struct Refused: Error {}
        await #expect(throws: Refused.self) {
            _ = try await PostgresDatabase.abandoning(after: .seconds(30)) { () -> Int in throw Refused() }
        }
    }

    @Test("cancelling the caller cancels work that answers cancellation")
    func callerCancelled() async throws {
        let task = Task {
            try await PostgresDatabase.abandoning(after: .seconds(600)) { () -> Int in
                try await Task.sleep(for: .seconds(600))
                return 1
            }
        }
        try await Task.sleep(for: .milliseconds(100))
        task.cancel()
        await #expect(throws: CancellationError.self) { _ = try await task.value }
    }
}
