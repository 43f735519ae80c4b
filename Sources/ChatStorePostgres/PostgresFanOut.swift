import ChatProtocol
import ChatStore
import Logging
import PostgresNIO

/// What nodes sharing a PostgreSQL database need to work together: committed batches in commit order, small events
/// between them (LISTEN/NOTIFY), heartbeats and who is connected where.
public struct PostgresFanOut: Sendable {
    public let database: PostgresDatabase

    public init(database: PostgresDatabase) {
        self.database = database
    }

    public static let batchChannel = PostgresBatch.channel
    public static let eventChannel = "chat_events"
    /// NOTIFY payloads are limited to 8000 bytes; an event is far smaller, and what is bigger is not sent.
    public static let maxPayloadBytes = 7900

    public struct Batch: Sendable, Equatable {
        public var number: Int64
        public var node: String
        public var messageIds: [Int64]
    }

    /// The number of the newest committed batch (0 when there is none).
    public func newestBatch() async throws(StoreError) -> Int64 {
        let logger = database.logger
        return try await database.withConnection("reading the newest batch") { connection in
            try await connection.rows("SELECT batch_no AS newest FROM delivery_counter", logger: logger)
                .first?.get("newest", Int64.self) ?? 0
        }
    }

    /// Committed batches after `number`, oldest first.
    public func batches(after number: Int64, limit: Int = 256) async throws(StoreError) -> [Batch] {
        let logger = database.logger
        return try await database.withConnection("reading committed batches") { connection in
            try await connection.rows("""
                SELECT batch_no, node, message_ids FROM delivery_batches WHERE batch_no > \(number) ORDER BY batch_no LIMIT \(Int64(limit))
                """, logger: logger).map { row in
                Batch(number: try row.get("batch_no"), node: try row.get("node"), messageIds: try row.get("message_ids"))
            }
        }
    }

    /// Sends an event to every node, this one included.
    public func notify(_ payload: String) async throws(StoreError) {
        guard payload.utf8.count <= Self.maxPayloadBytes else { return }
        let logger = database.logger
        try await database.withConnection("sending an event") { connection in
            try await connection.run("SELECT pg_notify(\(Self.eventChannel), \(payload))", logger: logger)
        }
    }

    /// PostgreSQL's clock in epoch milliseconds. Heartbeats, expiries and revocation times are all on this one clock:
    /// nodes (and `chat-admin` hosts) whose own clocks disagree still judge each other correctly.
    static let clock = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"

    /// Says this node is alive, on the database's clock.
    public func heartbeat() async throws(StoreError) {
        let (logger, node) = (database.logger, database.node)
        try await database.withConnection("sending a heartbeat") { connection in
            try await connection.run("""
                INSERT INTO nodes (node, seen_at) VALUES (\(node), \(unescaped: Self.clock))
                ON CONFLICT (node) DO UPDATE SET seen_at = excluded.seen_at
                """, logger: logger)
        }
    }

    /// Which nodes have heartbeats within `expiry` and which do not, by the database's clock, with who was
    /// connected to the silent ones; one statement, so that both are judged at the same moment.
    public struct Liveness: Sendable {
        public var live: Set<String> = []
        public var silent: [String: [(user: String, role: Role)]] = [:]
    }

    public func liveness(expiry: Duration) async throws(StoreError) -> Liveness {
        let logger = database.logger
        let limit = Self.milliseconds(expiry)
        return try await database.withConnection("looking for silent nodes") { connection in
            var result = Liveness()
            for row in try await connection.rows("""
                SELECT n.node, n.seen_at < \(unescaped: Self.clock) - \(limit) AS silent, p.username, p.role
                FROM nodes n LEFT JOIN presence p ON p.node = n.node
                """, logger: logger) {
                let node = try row.get("node", String.self)
                guard try row.get("silent", Bool.self) else {
                    result.live.insert(node)
                    continue
                }
                if result.silent[node] == nil { result.silent[node] = [] }
                if let user = try row.get("username", String?.self), let role = Role(rawValue: try row.get("role", String?.self) ?? "") {
                    result.silent[node, default: []].append((user, role))
                }
            }
            return result
        }
    }

    /// Who is connected to live nodes (heartbeat within `expiry`, by the database's clock).
    public func presence(expiry: Duration) async throws(StoreError) -> [(node: String, user: String, role: Role)] {
        let logger = database.logger
        let limit = Self.milliseconds(expiry)
        return try await database.withConnection("reading presence") { connection in
            try await connection.rows("""
                SELECT p.node, p.username, p.role FROM presence p JOIN nodes n ON n.node = p.node
                WHERE n.seen_at >= \(unescaped: Self.clock) - \(limit)
                """, logger: logger).compactMap { row in
                guard let role = Role(rawValue: try row.get("role")) else { return nil }
                return (try row.get("node"), try row.get("username"), role)
            }
        }
    }

    /// Records who has connections on this node now (`online`) and who no longer has (`offline`), in one transaction;
    /// `replacingAll` drops every other row of this node too (after an outage, in which changes were not recorded or
    /// the rows were pruned with the silent node).
    public func recordPresence(online: [(user: String, role: Role)], offline: [String] = [], replacingAll: Bool = false)
        async throws(StoreError) {
        let (logger, node) = (database.logger, database.node)
        let (names, roles) = (online.map(\.user), online.map(\.role.rawValue))
        try await database.withTransaction("recording presence") { connection in
            try await connection.run("""
                DELETE FROM presence WHERE node = \(node) AND (\(replacingAll) OR username = ANY(\(offline)::text[]))
                """, logger: logger)
            try await connection.run("""
                INSERT INTO presence (node, username, role) SELECT \(node), * FROM unnest(\(names)::text[], \(roles)::text[])
                ON CONFLICT DO NOTHING
                """, logger: logger)
        }
    }

    private static func milliseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }

    /// Forgets nodes silent for longer than `expiry` (long after every node has noticed) and batches older than
    /// `batchAge`, on the database's clock moved on by `ahead` (tests look into the future with it).
    public func prune(nodesSilentFor expiry: Duration, batchesOlderThan batchAge: Duration, ahead: Duration = .zero)
        async throws(StoreError) {
        let logger = database.logger
        let nodeLimit = Self.milliseconds(expiry) - Self.milliseconds(ahead)
        let batchLimit = Self.milliseconds(batchAge) - Self.milliseconds(ahead)
        try await database.withTransaction("pruning nodes and batches") { connection in
            try await connection.run("""
                DELETE FROM presence WHERE node IN (SELECT node FROM nodes WHERE seen_at < \(unescaped: Self.clock) - \(nodeLimit))
                """, logger: logger)
            try await connection.run("DELETE FROM nodes WHERE seen_at < \(unescaped: Self.clock) - \(nodeLimit)", logger: logger)
            try await connection.run("DELETE FROM delivery_batches WHERE committed_at < \(unescaped: Self.clock) - \(batchLimit)",
                                     logger: logger)
        }
    }

    /// Listens on a connection of its own for committed batches and events, calling `handle` with each
    /// notification's channel and payload, until the connection drops (throws) or the task is cancelled. `ready` is
    /// called once listening, so the caller can catch up on what was committed before.
    public func listen(ready: @Sendable () async -> Void,
                       handle: @escaping @Sendable (_ channel: String, _ payload: String) async -> Void) async throws {
        // postgres-nio's errors describe themselves generically; the failure says what PostgreSQL said.
        do {
            try await listenOnce(ready: ready, handle: handle)
        } catch {
            throw PostgresFailure(error, operation: "listening")
        }
    }

    private func listenOnce(ready: @Sendable () async -> Void,
                            handle: @escaping @Sendable (_ channel: String, _ payload: String) async -> Void) async throws {
        let location = database.location
        let configuration = PostgresConnection.Configuration(host: location.host, port: location.port, username: location.user,
                                                             password: location.password, database: location.database, tls: .disable)
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: database.logger)
        defer { Task { try? await connection.close() } }
        try await connection.listen(on: Self.batchChannel) { batches in
            try await connection.listen(on: Self.eventChannel) { events in
                await ready()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { for try await note in batches { await handle(Self.batchChannel, note.payload) } }
                    group.addTask { for try await note in events { await handle(Self.eventChannel, note.payload) } }
                    // Either sequence ending means the connection is gone.
                    try await group.next()
                    group.cancelAll()
                    throw PostgresFailure(operation: "listening", sqlState: nil, message: "the listening connection closed")
                }
            }
        }
    }
}
