/// Why a file could not be cleaned. Each case says where the file stopped making sense; the media store then stores
/// it as sent (flagged) or refuses it, as the operator chose (`--uncleanable-images`).
public enum MetadataCleaningError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The bytes are not the format they were taken for.
    case notFormat(expected: String)
    /// A segment or chunk claims more bytes than the file has left.
    case truncated(what: String, offset: Int)
    /// The structure is invalid (a byte that should start a marker does not, a length below its minimum, ...).
    case malformed(what: String, offset: Int)
    /// The EXIF data cannot be read safely, so its orientation is unknown (offsets past the end, counts larger than
    /// the segment).
    case malformedExif(String)
    /// A PNG critical chunk this cleaner does not know: dropping or keeping it could both be wrong.
    case unknownCriticalChunk(String)
    /// More kept/dropped alternations than any real image has.
    case tooManySegments(limit: Int)

    public var description: String {
        switch self {
        case .notFormat(let expected):
            "not a \(expected) file: the sniffed type and the bytes disagree; store it as sent or refuse it"
        case .truncated(let what, let offset):
            "truncated \(what) at byte \(offset): the file ends inside it; it cannot be cleaned, ask for the complete file"
        case .malformed(let what, let offset):
            "malformed \(what) at byte \(offset); it cannot be cleaned safely"
        case .malformedExif(let reason):
            "malformed EXIF (\(reason)): its orientation cannot be read safely, so it cannot be cleaned"
        case .unknownCriticalChunk(let type):
            "PNG critical chunk \(type) is unknown to the cleaner: it cannot tell whether the picture needs it"
        case .tooManySegments(let limit):
            "more than \(limit) metadata segments between image data: not cleaned, as no real image has that many"
        }
    }
}
