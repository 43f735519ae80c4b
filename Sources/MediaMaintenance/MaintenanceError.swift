import ChatStore
import MediaStore

/// Why a maintenance command could not do its work. Each case says what to check.
public enum MaintenanceError: Error, Sendable, CustomStringConvertible {
    /// The database refused a query or a change.
    case database(StoreError)
    /// The blob storage failed (a file operation, for the local directory).
    case storage(BlobStorageError)
    /// The request makes no sense as given (e.g. prune without any criterion).
    case invalidRequest(String)
    /// Work the media store does for uploads failed here too (cleaning an image, making thumbnails).
    case media(MediaError)
    /// A failure of none of the kinds above, kept as it was thrown.
    case other(any Error)

    public var description: String {
        switch self {
        case .database(let error): "\(error)"
        case .storage(let error): error.description
        case .invalidRequest(let text): text
        case .media(let error): error.description
        case .other(let error): "\(error)"
        }
    }

    static func wrap(_ error: any Error) -> MaintenanceError {
        switch error {
        case let error as MaintenanceError: error
        case let error as StoreError: .database(error)
        case let error as BlobStorageError: .storage(error)
        case let error as MediaError: .media(error)
        case BlobRemovalFailure.database(let error): .database(error)
        case BlobRemovalFailure.setAside(let error): wrap(error)
        default: .other(error)
        }
    }
}
