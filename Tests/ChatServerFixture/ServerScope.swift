import Foundation
import Testing

/// Stops every `TestServer` a test started, and removes its data directory, when the test ends: also when it fails
/// or throws before its own `stop()`, so one failing test cannot leave a server holding ports, files and threads
/// under the tests that run after it. Every suite that starts servers carries it: `@Suite(.stopsServers)`.
public struct ServerScope: TestTrait, SuiteTrait, TestScoping {
    public var isRecursive: Bool { true }

    public init() {}

    public func provideScope(for test: Test, testCase: Test.Case?,
                             performing function: @Sendable () async throws -> Void) async throws {
        let started = StartedServers()
        do {
            try await StartedServers.$current.withValue(started) { try await function() }
        } catch {
            await started.stopAll()
            throw error
        }
        await started.stopAll()
    }
}

extension Trait where Self == ServerScope {
    /// See `ServerScope`.
    public static var stopsServers: ServerScope { ServerScope() }
}

/// The servers started in one test's scope.
actor StartedServers {
    @TaskLocal static var current: StartedServers?

    private var servers: [TestServer] = []

    func add(_ server: TestServer) {
        servers.append(server)
    }

    func stopAll() async {
        let all = servers
        servers = []
        for server in all {
            await server.stop()
            try? FileManager.default.removeItem(atPath: server.directory)
        }
    }

    /// Registers `server` with the running test's scope; a server started outside one is a mistake in the test.
    static func register(_ server: TestServer, sourceLocation: SourceLocation) async {
        guard let current else {
            Issue.record("TestServer started outside a `.stopsServers` suite; it would outlive a failing test",
                         sourceLocation: sourceLocation)
            return
        }
        await current.add(server)
    }
}
