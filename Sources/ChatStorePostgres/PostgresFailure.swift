import ChatStore
import Foundation
import NIOCore
import NIOPosix
import PostgresNIO

/// Why PostgreSQL refused or could not do an operation: the operation, PostgreSQL's SQLSTATE and message when the
/// server answered, or what went wrong on the way (connection refused, timed out). postgres-nio's own descriptions
/// are generic on purpose (they may hold query data), so the useful fields are taken out here.
public struct PostgresFailure: Error, Sendable, CustomStringConvertible {
    public var operation: String
    /// The SQLSTATE code, e.g. `40P01` (deadlock), `23505` (unique violation), `57P01` (server shutting down).
    public var sqlState: String?
    public var message: String
    /// What to do about it, when the cause says (a wrong password, no such database, nothing listening).
    public var advice: String?

    init(operation: String, sqlState: String?, message: String, advice: String? = nil) {
        self.operation = operation
        self.sqlState = sqlState
        self.message = message
        self.advice = advice
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
            } else if error.code == .connectionError, let underlying = error.underlying {
                message = "cannot connect: \(Self.connectionProblem(underlying))"
            } else if error.code == .authMechanismRequiresPassword {
                message = "PostgreSQL asks for a password and none was given"
            } else if let underlying = error.underlying {
                message = "\(error.code): \(underlying)"
            } else {
                message = "\(error.code)"
            }
            advice = Self.advice(sqlState: sqlState, code: error.code)
        } else {
            sqlState = nil
            message = "\(error)"
        }
    }

    /// Why a connection could not be made, in a few words ("Connection refused"), not NIO's whole record of attempts.
    static func connectionProblem(_ error: any Error) -> String {
        if let attempts = error as? NIOConnectionError {
            if let first = attempts.connectionErrors.first { return connectionProblem(first.error) }
            if attempts.dnsAError != nil || attempts.dnsAAAAError != nil { return "cannot resolve the host name \(attempts.host)" }
        }
        if let io = error as? IOError { return String(cString: strerror(io.errnoCode)) }
        if let channel = error as? ChannelError, case .connectTimeout(let after) = channel {
            return "no answer within \(after.nanoseconds / 1_000_000_000) s"
        }
        return "\(error)"
    }

    /// What the operator can do about a refused connection or login.
    static func advice(sqlState: String?, code: PSQLError.Code) -> String? {
        switch sqlState {
        case "28P01": return "check the password (in the URL, PGPASSWORD or the file of ?passwordFile=PATH)"
        case "28000": return "check the user name, and that pg_hba.conf lets this user in from this host"
        case "3D000": return "create the database (createdb NAME) or correct its name in the URL"
        case "57P03": return "PostgreSQL is starting or stopping; try again in a moment"
        case "53300": return "PostgreSQL has no connection left; raise max_connections or run fewer nodes"
        default: break
        }
        if code == .connectionError { return "check that PostgreSQL is running and listening on that host and port" }
        if code == .authMechanismRequiresPassword { return "give the password in the URL, PGPASSWORD or ?passwordFile=PATH" }
        return nil
    }

    static func timedOut(operation: String, after deadline: Duration) -> PostgresFailure {
        PostgresFailure(operation: operation, sqlState: nil,
                        message: "no answer from PostgreSQL within \(deadline); is the database up and reachable?")
    }

    public var description: String {
        "\(operation): \(message)" + (sqlState.map { " (SQLSTATE \($0))" } ?? "") + (advice.map { "; \($0)" } ?? "")
    }

    /// A deadlock or serialization failure: the transaction did nothing and may run again.
    static func isRetryable(_ failure: DatabaseFailure) -> Bool {
        guard let cause = failure.cause as? PostgresFailure else { return false }
        return cause.sqlState == "40P01" || cause.sqlState == "40001"
    }
}
