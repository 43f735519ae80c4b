import Foundation
import GRDB
import Logging
import Synchronization

/// Errors from the store. Each says what failed and what to do.
public enum StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The database file could not be opened or migrated; `cause` keeps SQLite's result code.
    case cannotOpen(path: String, cause: DatabaseFailure)
    /// A username that is not 1-64 of letters, digits, `.`, `_`, `-`, `@`.
    case invalidUsername(String)
    /// The user already has tokens with the other role; one user has one role.
    case roleConflict(user: String, existing: String)
    /// No such user or token.
    case notFound(String)
    /// SQLite refused the operation (disk full, I/O error, locked too long...).
    case database(DatabaseFailure)
    /// A file to import is missing, not SQLite, or not the expected table.
    case unreadableImport(path: String, reason: String)
    /// A database URL that cannot be used; the reason never repeats the URL (it may hold a password).
    case invalidDatabaseURL(reason: String)
    /// The database has a migration this binary does not know: a newer version made it.
    case schemaTooNew(database: String, migration: String)
    /// The blob's objects are being deleted from the object store right now (a claimed pending deletion), so it
    /// cannot be marked present; its bytes must be put again once that is over.
    case removalInProgress(hash: String)
    /// `chat-admin migrate`'s target holds rows that are not copies of the source's (made there first, or changed
    /// since a copy), or lacks rows it should have after copying.
    case notACopy(table: String, reason: String)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let cause):
            "cannot open the database at \(path): \(cause). Check the data directory exists and is writable."
        case .invalidUsername(let name):
            "invalid username \"\(name)\": use 1 to 64 letters, digits, '.', '_', '-' or '@'"
        case .roleConflict(let user, let existing):
            "\(user) already has \(existing) tokens; a user has one role. Revoke them first or pick another name."
        case .notFound(let what):
            "\(what) not found"
        case .database(let failure):
            "database error: \(failure)"
        case .unreadableImport(let path, let reason):
            "cannot import \(path): \(reason)"
        case .invalidDatabaseURL(let reason):
            "invalid database URL: \(reason)"
        case .removalInProgress(let hash):
            "the stored file \(hash.prefix(12))… is being removed from the media store right now; try again in a moment"
        case .notACopy(let table, let reason):
            "the PostgreSQL database is not a copy of this SQLite database: \(table): \(reason). Migrate into a new, empty database (createdb NAME), or into the one an earlier migrate from this same file filled."
        case .schemaTooNew(let database, let migration):
            "the database \(database) has migration \(migration), which this version does not know: a newer version made it. Run that version (or a newer one); an older one could lose data."
        }
    }
}

/// The SQLite database of a data directory: opened in WAL mode, migrated from the `schema/` files embedded at
/// build time. Shared by the server and `chat-admin`, which may run at the same time.
public final class ChatDatabase: Sendable {
    let pool: DatabasePool
    public let path: String
    /// Conversation counters for the message store's commits (see `SQLiteMessageStore`).
    let conversationCache = Mutex(ConversationCache())

    /// How durable a commit is. `full` survives power loss; `normal` survives a process crash (WAL), and is
    /// faster. Group commit makes `full` cheap enough to be the default.
    public enum Durability: String, Sendable, CaseIterable {
        case full
        case normal
    }

    public init(path: String, durability: Durability = .full) throws(StoreError) {
        self.path = path
        var config = Configuration()
        config.busyMode = .timeout(10)
        config.label = "chat"
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = \(durability == .full ? "FULL" : "NORMAL")")
        }
        do {
            pool = try DatabasePool(path: path, configuration: config)
            try Self.migrator.migrate(pool)
        } catch {
            throw .cannotOpen(path: path, cause: DatabaseFailure(error))
        }
    }

    /// The stores of this database.
    public var messages: SQLiteMessageStore { SQLiteMessageStore(database: self) }
    public var readMarkers: SQLiteReadMarkerStore { SQLiteReadMarkerStore(database: self) }
    public var tokens: SQLiteTokenStore { SQLiteTokenStore(database: self) }

    /// Names of the migrations applied to this database, in order.
    public func appliedMigrations() throws(StoreError) -> [String] {
        do {
            return try pool.read { db in try Self.migrator.appliedMigrations(db) }
        } catch {
            throw .wrap(error)
        }
    }

    /// The migrations from `schema/`, in file-name order, each recorded once applied.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        for migration in embeddedMigrations {
            migrator.registerMigration(migration.name) { db in
                try db.execute(sql: migration.sql)
            }
        }
        return migrator
    }
}

/// Milliseconds since the Unix epoch: the one time format of the database and the protocol.
public func epochMilliseconds(_ date: Date = Date()) -> Int64 {
    Int64((date.timeIntervalSince1970 * 1000).rounded())
}

extension StoreError {
    /// Wraps any thrown error from GRDB, keeping it and SQLite's result code.
    public static func wrap(_ error: any Error) -> StoreError {
        if let error = error as? StoreError { return error }
        return .database(DatabaseFailure(error))
    }
}

/// Why the database refused an operation: the error as thrown, and SQLite's extended result code when SQLite said
/// no (`SQLITE_FULL` 13, `SQLITE_BUSY` 5, `SQLITE_IOERR` 10 and its extended codes...), for callers that act on
/// the kind of failure rather than its text.
public struct DatabaseFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// SQLite's extended result code; nil when the cause was not SQLite's.
    public let resultCode: Int32?
    public let cause: any Error & Sendable

    public init(_ error: any Error) {
        if let sqlite = error as? DatabaseError {
            resultCode = sqlite.extendedResultCode.rawValue
            cause = sqlite
        } else {
            resultCode = nil
            cause = DescribedError(description: "\(error)")
        }
    }

    /// A failure of another database, which has no SQLite result code.
    public init(cause: any Error & Sendable) {
        resultCode = nil
        self.cause = cause
    }

    /// The primary result code (the extended code's low byte), e.g. 13 for any kind of full disk.
    public var primaryResultCode: Int32? { resultCode.map { $0 & 0xFF } }

    public var description: String { "\(cause)" }

    /// The same code and the same text: errors do not compare otherwise.
    public static func == (a: DatabaseFailure, b: DatabaseFailure) -> Bool {
        a.resultCode == b.resultCode && a.description == b.description
    }
}

/// A non-Sendable error kept by its description.
private struct DescribedError: Error, Sendable, CustomStringConvertible {
    var description: String
}
