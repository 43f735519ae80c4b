import ChatStore
import PostgresNIO

/// Why PostgreSQL refused or could not do an operation: the operation, PostgreSQL's SQLSTATE and message when the
/// server answered, or what went wrong on the way (connection refused, timed out). postgres-nio's own descriptions
/// are generic on purpose (they may hold query data), so the useful fields are taken out here.
public struct PostgresFailure: Error, Sendable, CustomStringConvertible {
    public var operation: String
    /// The SQLSTATE code, e.g. `40P01` (deadlock), `23505` (unique violation), `57P01` (server shutting down).
    public var sqlState: String?
    public var message: String

    init(operation: String, sqlState: String?, message: String) {
        self.operation = operation
        self.sqlState = sqlState
        self.message = message
    }

    init(_ error: any Error, operation: String) {
        if let failure = error as? PostgresFailure {
            self = failure
            return
        }
        self.operation = operation
        if let error = error as? PSQLError {
            sqlState = error.serverInfo?[.sqlState]
            if let serverMessage = error.serverInfo?[.message] {
                message = serverMessage
            } else if let underlying = error.underlying {
                message = "\(error.code): \(underlying)"
            } else {
                message = "\(error.code)"
            }
        } else {
            sqlState = nil
            message = "\(error)"
        }
    }

    static func timedOut(operation: String, after deadline: Duration) -> PostgresFailure {
        PostgresFailure(operation: operation, sqlState: nil,
                        message: "no answer from PostgreSQL within \(deadline); is the database up and reachable?")
    }

    public var description: String {
        "\(operation): \(message)" + (sqlState.map { " (SQLSTATE \($0))" } ?? "")
    }

    /// A deadlock or serialization failure: the transaction did nothing and may run again.
    static func isRetryable(_ failure: DatabaseFailure) -> Bool {
        guard let cause = failure.cause as? PostgresFailure else { return false }
        return cause.sqlState == "40P01" || cause.sqlState == "40001"
    }
}
