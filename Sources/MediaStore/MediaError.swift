import ChatProtocol
import ChatStore
import MediaPrivacy
#if canImport(Glibc)
import Glibc
#endif

/// Why an upload or a media operation failed. `description` is meant for the client: it says what went wrong and
/// what to do. Every failure of an upload discards it (temporary file and row), except `unknownUpload`.
public enum MediaError: Error, Sendable, Equatable, CustomStringConvertible {
    case tooLarge(size: Int, limit: Int)
    case tooManyUploads(limit: Int)
    case dailyAllowance(used: Int, requested: Int, limit: Int)
    case unknownUpload(id: String, reason: String)
    case moreThanDeclared(declared: Int)
    case hashMismatch(declared: String, actual: String)
    case incomplete(declared: Int, received: Int)
    case empty
    case invalid(String)
    /// A file operation failed (`errno`); ENOSPC and friends mean the disk is full.
    case storage(operation: String, errno: Int32)
    /// A stored blob is not in the blob storage although its row says it is present (deleted behind the server's back).
    case missing(key: String)
    case database(StoreError)
    case sniffer(String)
    /// The blob storage (an object store) is unreachable or failing, or the bytes are being removed right now. A
    /// WebSocket upload is kept: it can be resumed (or sent again) once the store is back; an HTTP one is discarded.
    case storeUnavailable(BlobStoreFailure)
    /// The image's metadata cannot be removed safely and the operator refuses such images.
    case uncleanableImage(MetadataCleaningError)

    public var description: String {
        switch self {
        case .tooLarge(let size, let limit):
            "the file is over the upload limit: \(size) bytes, at most \(limit) bytes are accepted"
        case .tooManyUploads(let limit):
            "too many uploads in progress: at most \(limit) per user; finish or cancel one first (interrupted uploads count until they expire)"
        case .dailyAllowance(let used, let requested, let limit):
            "daily upload allowance used up: \(used) of \(limit) bytes uploaded today (UTC), this upload would add \(requested)"
        case .unknownUpload(let id, let reason):
            "no upload \(id.prefix(80)): \(reason)"
        case .moreThanDeclared(let declared):
            "more bytes than the \(declared) declared in uploadBegin; the upload is discarded"
        case .hashMismatch(let declared, let actual):
            "the bytes' SHA-256 is \(actual), not \(declared.prefix(64)) as declared; the upload is discarded: send it again"
        case .incomplete(let declared, let received):
            "uploadEnd after \(received) of \(declared) declared bytes; the upload is discarded"
        case .empty:
            "the file is empty (0 bytes); empty files are not stored"
        case .invalid(let reason):
            reason
        case .storage(let operation, let errno):
            Self.isDiskFull(errno)
                ? "the server's disk is full (\(operation)); the upload is discarded, try again later"
                : "the server could not store the file (\(operation): \(String(cString: strerror(errno)))); try again later"
        case .missing:
            "the stored file is missing from the media store; the operator's `chat-admin media verify` lists such files"
        case .database(let reason):
            "the server could not record the upload (\(reason)); try again later"
        case .sniffer(let reason):
            "cannot set up libmagic: \(reason)"
        // The cause (endpoints, keys) is for the server's log, not for clients.
        case .storeUnavailable(let failure) where failure.cause is StoreError:
            "the file is being removed from the media store right now; the upload is kept: resume it or send it again in a moment"
        case .storeUnavailable:
            "the media store cannot be reached right now; the upload is kept: resume it or send it again later"
        case .uncleanableImage(let reason):
            "this server removes location and device data from images, and this one cannot be cleaned safely (\(reason)); "
                + "save or export the picture again (or take a screenshot of it) and upload that"
        }
    }

    /// ENOSPC and friends: the disk (or the user's quota) is full.
    public static func isDiskFull(_ errno: Int32) -> Bool {
        errno == ENOSPC || errno == EDQUOT || errno == EFBIG
    }

    /// The `error` frame code for WebSocket clients.
    public var code: ErrorCode {
        switch self {
        case .tooLarge: .tooLarge
        case .tooManyUploads, .dailyAllowance: .quotaExceeded
        case .unknownUpload: .unknownUpload
        case .moreThanDeclared, .hashMismatch: .uploadMismatch
        case .incomplete: .uploadIncomplete
        case .empty: .emptyUpload
        case .invalid: .invalidFrame
        case .storage, .missing, .database, .sniffer, .storeUnavailable: .storeFailed
        case .uncleanableImage: .uncleanableImage
        }
    }

    static func wrap(_ error: StoreError) -> MediaError {
        if case .removalInProgress = error { return .storeUnavailable(BlobStoreFailure(error)) }
        return .database(error)
    }

    /// A storage failure, described as the store's own file operations are.
    static func stored(_ error: BlobStorageError) -> MediaError {
        switch error {
        case .io(let operation, _, let code): .storage(operation: operation, errno: code)
        case .invalidKey(let reason): .invalid(reason)
        case .notFound(let key): .missing(key: key.description)
        case .unavailable(let failure): .storeUnavailable(failure)
        }
    }

    static var poolStopped: MediaError { .storage(operation: "worker pool", errno: ECANCELED) }
}
