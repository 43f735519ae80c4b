import ChatStore
import Foundation
import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// The chat database on PostgreSQL, shared by every server node and `chat-admin`: a connection pool (postgres-nio's
/// `PostgresClient`), the migrations from `schema/postgres/` embedded at build time, and the stores.
///
/// The pool works only while `run()` runs (the server runs it as a service; `withDatabase` runs it around a piece
/// of work). Every operation has a deadline, so an unreachable or stopped database makes calls fail promptly with
/// `StoreError.database` instead of waiting for it.
public final class PostgresDatabase: Sendable {
    public let location: PostgresLocation
    /// This process's name among the nodes sharing the database.
    public let node: String
    let client: PostgresClient
    let logger: Logger
    /// How long one operation (a query, a transaction) may take before it fails.
    let deadline: Duration
    /// Customers whose conversation is known to exist (conversations are never deleted): a batch to them needs no
    /// statement to create it first.
    let knownConversations = Mutex<Set<String>>([])

    public init(location: PostgresLocation, logger: Logger, node: String = PostgresDatabase.makeNodeName(),
                deadline: Duration = .seconds(5), maximumConnections: Int = 16) {
        self.location = location
        self.node = node
        self.logger = logger
        self.deadline = deadline
        var configuration = PostgresClient.Configuration(host: location.host, port: location.port, username: location.user,
                                                         password: location.password, database: location.database, tls: .disable)
        configuration.options.connectTimeout = deadline
        configuration.options.maximumConnections = maximumConnections
        client = PostgresClient(configuration: configuration, backgroundLogger: logger)
    }

    /// A name for this process that no other node has: host, process id and a random part.
    public static func makeNodeName() -> String {
        "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)-\(UInt32.random(in: 0...UInt32.max))"
    }

    /// Makes one connection of its own, outside the pool, and closes it: the error of a refused connection or login
    /// as PostgreSQL gave it (a wrong password, no such database, nothing listening), with what to do. The pool would
    /// retry such a login quietly until the deadline and report only that it got no answer. Called before the pool
    /// runs, by the server at start-up and by `withDatabase`.
    public func checkConnection() async throws(StoreError) {
        var configuration = PostgresConnection.Configuration(host: location.host, port: location.port, username: location.user,
                                                             password: location.password, database: location.database, tls: .disable)
        let (seconds, attoseconds) = deadline.components
        configuration.options.connectTimeout = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
        let (logger, options) = (self.logger, configuration)
        try await withDeadline("connecting to \(location)") {
            let connection = try await PostgresConnection.connect(configuration: options, id: 0, logger: logger)
            try? await connection.close()
        }
    }

    /// Runs the connection pool until the task is cancelled.
    public func run() async {
        await client.run()
    }

    /// Opens the database at `url`, runs the pool while `body` runs, and stops it after. For `chat-admin` and tests.
    public static func withDatabase<T: Sendable>(url: String, logger: Logger, migrate: Bool = true, deadline: Duration = .seconds(5),
                                                 _ body: @Sendable (PostgresDatabase) async throws -> T) async throws -> T {
        let database = PostgresDatabase(location: try PostgresLocation(url: url), logger: logger, deadline: deadline)
        try await database.checkConnection()
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await database.run() }
            defer { group.cancelAll() }
            if migrate { try await database.migrate() }
            return try await body(database)
        }
    }

    /// This database's stores.
    public var storage: ChatStorage {
        ChatStorage(messages: PostgresMessageStore(database: self), readMarkers: PostgresReadMarkerStore(database: self),
                    tokens: PostgresTokenStore(database: self), catalog: PostgresMediaCatalog(database: self),
                    canned: PostgresCannedReplyStore(database: self), search: PostgresMessageSearch(database: self))
    }

    // MARK: Migrations

    /// Applies the migrations this binary has and the database lacks, one transaction each, under an advisory lock
    /// so that nodes starting together do not race. A database with migrations this binary does not know (a newer
    /// server's) is refused: running an old server on it could lose data.
    public func migrate() async throws(StoreError) {
        let known = embeddedMigrations.map(\.name)
        // Unreachable or refusing: said within the ordinary deadline.
        try await withConnection("connecting") { connection in try await connection.run("SELECT 1", logger: self.logger) }
        // A migration may rewrite a large table: it gets longer than an ordinary operation.
        try await withDeadline("migrating", deadline: max(deadline, .seconds(60))) { try await self.client.withConnection { connection in
            try await connection.query("SELECT pg_advisory_lock(\(Self.migrationLock))", logger: self.logger)
            do {
                try await connection.query("""
                    CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)
                    """, logger: self.logger)
                var applied: [String] = []
                for try await name in try await connection.query("SELECT name FROM schema_migrations ORDER BY name",
                                                                 logger: self.logger).decode(String.self) {
                    applied.append(name)
                }
                if let unknown = applied.first(where: { !known.contains($0) }) {
                    throw StoreError.schemaTooNew(database: self.location.description, migration: unknown)
                }
                for migration in embeddedMigrations where !applied.contains(migration.name) {
                    let now = epochMilliseconds()
                    try await connection.withTransaction(logger: self.logger) { transaction in
                        for statement in Self.statements(of: migration.sql) {
                            try await transaction.query(PostgresQuery(unsafeSQL: statement), logger: self.logger)
                        }
                        try await transaction.query("INSERT INTO schema_migrations (name, applied_at) VALUES (\(migration.name), \(now))",
                                                    logger: self.logger)
                    }
                    self.logger.info("applied migration", metadata: ["migration": "\(migration.name)"])
                }
            } catch {
                _ = try? await connection.query("SELECT pg_advisory_unlock(\(Self.migrationLock))", logger: self.logger)
                throw error
            }
            try await connection.query("SELECT pg_advisory_unlock(\(Self.migrationLock))", logger: self.logger)
        } }
    }

    /// Names of the migrations applied to this database, in order.
    public func appliedMigrations() async throws(StoreError) -> [String] {
        try await withConnection("reading migrations") { connection in
            var names: [String] = []
            for try await name in try await connection.query("SELECT name FROM schema_migrations ORDER BY name",
                                                             logger: self.logger).decode(String.self) {
                names.append(name)
            }
            return names
        }
    }

    /// The statements of a migration file, without comment lines. Migration files are plain statements ending in
    /// `;` (no dollar quoting), because a prepared statement holds one command.
    static func statements(of sql: String) -> [String] {
        let code = sql.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("--") }
            .joined(separator: "\n")
        return code.split(separator: ";").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
    }

    static let migrationLock: Int64 = 0x6368_6174_0001  // "chat" 1

    // MARK: Running operations

    /// Runs `body` on a pooled connection within the deadline, with errors as `StoreError`.
    func withConnection<T: Sendable>(_ what: String, _ body: @escaping @Sendable (PostgresConnection) async throws -> T)
        async throws(StoreError) -> T {
        try await withDeadline(what) { try await self.client.withConnection(body) }
    }

    /// Runs `body` in a transaction within the deadline. A deadlock or serialization failure (another node's
    /// transaction won) is retried a few times: the work has not happened, and doing it again is correct.
    func withTransaction<T: Sendable>(_ what: String, _ body: @escaping @Sendable (PostgresConnection) async throws -> T)
        async throws(StoreError) -> T {
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await withDeadline(what) {
                    try await self.client.withTransaction(logger: self.logger) { connection in try await body(connection) }
                }
            } catch .database(let failure) where attempt < 4 && PostgresFailure.isRetryable(failure) {
                logger.debug("retrying a transaction", metadata: ["operation": "\(what)", "error": "\(failure)"])
                continue
            }
        }
    }

    private func withDeadline<T: Sendable>(_ what: String, deadline: Duration? = nil,
                                           _ body: @escaping @Sendable () async throws -> T) async throws(StoreError) -> T {
        let deadline = deadline ?? self.deadline
        do {
            guard let value = try await Self.abandoning(after: deadline, body) else {
                throw PostgresFailure.timedOut(operation: what, after: deadline)
            }
            return value
        } catch {
            // A transaction's error wraps the closure's; a StoreError thrown on purpose (a role conflict) stays itself.
            var cause: any Error = error
            if let transaction = error as? PostgresTransactionError {
                cause = transaction.closureError ?? transaction.beginError ?? transaction.commitError ?? error
            }
            if let store = cause as? StoreError { throw store }
            throw .database(DatabaseFailure(cause: PostgresFailure(cause, operation: what)))
        }
    }

    /// `body`'s result, or nil once `deadline` has passed: then `body` is cancelled and no longer waited for. A task
    /// group would wait for it after its deadline too, and a PostgresNIO operation does not always answer
    /// cancellation (a pool request after the server restarted was seen to hang a node's shutdown that way).
    /// Cancelling the caller cancels `body`, which ends the wait if `body` answers, and at the deadline if not.
    static func abandoning<T: Sendable>(after deadline: Duration, _ body: @escaping @Sendable () async throws -> T)
        async throws -> T? {
        let work = Task { try await body() }
        let waiting = Waiting<T>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T?, any Error>) in
                waiting.set(continuation)
                let timer = Task {
                    do { try await Task.sleep(for: deadline) } catch { return }
                    guard let caller = waiting.take() else { return }
                    work.cancel()
                    caller.resume(returning: nil)
                }
                Task {
                    let result = await work.result
                    timer.cancel()
                    waiting.take()?.resume(with: result.map { Optional($0) })
                }
            }
        } onCancel: {
            work.cancel()
        }
    }
}

/// The caller of `abandoning(after:_:)`, resumed once: by the result or by the deadline, whichever comes first.
private final class Waiting<T: Sendable>: Sendable {
    private let continuation = Mutex<CheckedContinuation<T?, any Error>?>(nil)

    func set(_ continuation: CheckedContinuation<T?, any Error>) {
        self.continuation.withLock { $0 = continuation }
    }

    func take() -> CheckedContinuation<T?, any Error>? {
        continuation.withLock { $0.take() }
    }
}
