import ChatStore
import Foundation

/// Where the PostgreSQL database is: `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`, with the password (when the
/// URL has none) from `PGPASSWORD` or from the file named by `?passwordFile=PATH`. The password never appears in
/// `description`, logs or errors.
public struct PostgresLocation: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var user: String
    public var database: String
    /// Kept out of `description`, logs and errors.
    var password: String?

    /// Whether `value` names a PostgreSQL database rather than a file.
    public static func isPostgresURL(_ value: String) -> Bool {
        value.hasPrefix("postgres://") || value.hasPrefix("postgresql://")
    }

    public init(url: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(StoreError) {
        // Errors name what was wrong, never the URL itself: it may hold a password.
        func invalid(_ reason: String) -> StoreError {
            .invalidDatabaseURL(reason: "\(reason); expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE")
        }
        guard Self.isPostgresURL(url), let components = URLComponents(string: url) else {
            throw invalid("not a postgres:// URL")
        }
        guard let host = components.host, !host.isEmpty else { throw invalid("no host") }
        guard let user = components.user, !user.isEmpty else { throw invalid("no user") }
        let database = String(components.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty, !database.contains("/") else { throw invalid("no database name") }
        let port = components.port ?? 5432
        guard (1...65535).contains(port) else { throw invalid("port \(port) is out of range") }
        var password = components.password
        for item in components.queryItems ?? [] {
            switch item.name {
            case "passwordFile":
                guard let path = item.value, !path.isEmpty else { throw invalid("passwordFile needs a path") }
                do {
                    let text = try String(contentsOfFile: path, encoding: .utf8)
                    password = text.trimmingCharacters(in: .newlines)
                } catch {
                    throw .invalidDatabaseURL(reason: "the password file \(path) cannot be read: \(error.localizedDescription)")
                }
            default:
                throw invalid("unknown option \(item.name)")
            }
        }
        if password == nil { password = environment["PGPASSWORD"] }
        self.host = host
        self.port = port
        self.user = user
        self.database = database
        self.password = password
    }

    public var description: String {
        "postgres://\(user)@\(host):\(port)/\(database)"
    }
}
