import ChatStore
#if canImport(Glibc)
import Glibc
#endif

/// Why a maintenance command could not do its work. Each case says what to check.
public enum MaintenanceError: Error, Sendable, CustomStringConvertible {
    /// The database refused a query or a change.
    case database(StoreError)
    /// A file operation failed.
    case io(operation: String, path: String, errno: Int32)
    /// The request makes no sense as given (e.g. prune without any criterion).
    case invalidRequest(String)

    public var description: String {
        switch self {
        case .database(let error):
            "\(error)"
        case .io(let operation, let path, let code):
            "could not \(operation) \(path): \(String(cString: strerror(code))). Check the media directory's permissions and free space."
        case .invalidRequest(let text):
            text
        }
    }

    static func wrap(_ error: any Error) -> MaintenanceError {
        if let error = error as? MaintenanceError { return error }
        if let error = error as? StoreError { return .database(error) }
        return .database(.wrap(error))
    }
}
