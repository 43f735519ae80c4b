import ChatClient
import ChatProtocol
import ChatServer
@_spi(Testing) import ChatStore
import Foundation
import Logging
import ServiceLifecycle
import TestProcesses
import Testing

/// A real chat server in the test process, on an ephemeral loopback port with its own temporary data directory:
/// the one fixture of the server and media test targets (each adds its own helpers in an extension).
///
/// A test that fails before its `await server.stop()` does not leave its server running: the suite's `ServerScope`
/// (`@Suite(.stopsServers)`) stops it and removes its directory when the test ends.
public final class TestServer: Sendable {
    public let directory: String
    public let configuration: ServerConfiguration
    public let port: Int
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    public var url: String { "ws://127.0.0.1:\(port)/ws" }
    public var httpBase: String { "http://127.0.0.1:\(port)" }
    public var mediaDirectory: String { configuration.resolvedMediaDirectory }

    public static func makeDirectory() -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("chat-test-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Starts a server on `directory` (a new one by default). `configure` adjusts limits for a test.
    public static func start(directory: String = makeDirectory(), configure: (inout ServerConfiguration) -> Void = { _ in },
                             sourceLocation: SourceLocation = #_sourceLocation) async throws -> TestServer {
        var configuration = ServerConfiguration()
        configuration.port = 0
        configuration.dataDirectory = directory
        configuration.durability = .normal
        configuration.revocationPollInterval = .milliseconds(100)
        configure(&configuration)
        var logger = Logger(label: "test-server")
        logger.logLevel = .warning
        let (portStream, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let group = try await ChatServer(configuration: configuration, logger: logger)
            .makeServiceGroup(gracefulShutdownSignals: []) { port in portContinuation.yield(port) }
        let task = Task { try await group.run() }
        var iterator = portStream.makeAsyncIterator()
        guard let port = await iterator.next() else { throw TestFailure("server did not start") }
        let server = TestServer(directory: directory, configuration: configuration, port: port, group: group, task: task)
        await StartedServers.register(server, sourceLocation: sourceLocation)
        return server
    }

    private init(directory: String, configuration: ServerConfiguration, port: Int, group: ServiceGroup,
                 task: Task<Void, any Error>) {
        self.directory = directory
        self.configuration = configuration
        self.port = port
        self.group = group
        self.task = task
    }

    /// Graceful shutdown, as on SIGTERM; returns when the server has stopped.
    public func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await task.value
    }

    /// A second handle on the database, as `chat-admin` would open it.
    public func database() throws -> ChatDatabase {
        try ChatDatabase(path: configuration.databasePath)
    }

    public func makeToken(_ user: String, role: Role, expiresAt: Int64? = nil) async throws -> String {
        try await SQLiteTokenStore(database: try database()).create(username: user, role: role, expiresAt: expiresAt).token
    }
}

extension TestServer {
    /// The server's SQLite file opened directly, for tests that look at rows or break them with raw SQL.
    @_spi(Testing) public func sqlite() throws -> RawSQLite {
        try RawSQLite(path: configuration.databasePath)
    }
}

extension TestServer {
    /// A WebSocket client that has completed hello, the token in the Authorization header: the one way the test
    /// targets connect (each wraps it in its own helpers).
    public func open(_ user: String, token: String, lastSeq: Int? = nil, lastSeqs: [String: Int]? = nil,
                     maxFrameSize: Int = 4 << 20) async throws -> (ChatConnection, Welcome) {
        let connection = ChatConnection(url: url, bearer: token, maxFrameSize: maxFrameSize)
        let welcome = try await connection.hello(Hello(user: user, lastSeq: lastSeq, lastSeqs: lastSeqs), timeout: frameWait)
        return (connection, welcome)
    }
}
