import ChatStore
import ChatStorePostgres
import Logging
import ServiceLifecycle

/// The database the server runs on, the bus that fans out what it commits, and what must run beside them.
struct StorageBackend {
    var storage: ChatStorage
    var bus: any DeliveryBus
    /// Run before the HTTP server and stopped after it: they serve the chat until its last message is stored.
    var services: [any Service]

    /// Opens the SQLite file of the data directory (one process), or the PostgreSQL database of
    /// `configuration.database` (several nodes): migrated, with its bus.
    static func open(_ configuration: ServerConfiguration, logger: Logger) async throws(ServerStartError) -> StorageBackend {
        guard let url = configuration.database else {
            let database: ChatDatabase
            do {
                database = try ChatDatabase(path: configuration.databasePath, durability: configuration.durability)
            } catch {
                throw .store(error)
            }
            return StorageBackend(storage: database.storage, bus: LocalDeliveryBus(), services: [])
        }
        let database: PostgresDatabase
        do {
            database = PostgresDatabase(location: try PostgresLocation(url: url), logger: logger, deadline: configuration.databaseTimeout)
        } catch {
            throw .store(error)
        }
        do {
            try await database.checkConnection()
        } catch {
            throw .store(error)
        }
        let pool = PostgresPool(database: database)
        do {
            try await database.migrate()
        } catch {
            pool.task.cancel()
            throw .store(error)
        }
        logger.info("using PostgreSQL", metadata: ["database": "\(database.location)", "node": "\(database.node)"])
        let bus = PostgresDeliveryBus(database: database, logger: logger)
        return StorageBackend(storage: database.storage, bus: bus, services: [pool, BusRunner(bus: bus)])
    }
}

/// Runs PostgreSQL's connection pool. Started before the service group exists, because migrations and loading the
/// roster need it; stopped last, when the service group ends.
private struct PostgresPool: Service {
    let task: Task<Void, Never>

    init(database: PostgresDatabase) {
        task = Task { await database.run() }
    }

    func run() async {
        let task = self.task
        await cancelWhenGracefulShutdown {
            await withTaskCancellationHandler { await task.value } onCancel: { task.cancel() }
        }
        task.cancel()
        await task.value
    }
}

/// Runs the bus's listening, catching up and heartbeats until shutdown.
private struct BusRunner: Service {
    let bus: PostgresDeliveryBus

    func run() async {
        await cancelWhenGracefulShutdown { await bus.run() }
    }
}
