/// What a cleaned file is made of: ranges of the original copied byte for byte, and the few bytes written anew (a
/// minimal EXIF segment). Only the plan is held in memory, never a copy of the file, so cleaning a large file costs
/// its parse and one write.
public struct CleaningPlan: Sendable, Equatable {
    public enum Piece: Sendable, Equatable {
        /// Bytes of the original, in this range.
        case copy(Range<Int>)
        /// New bytes.
        case insert([UInt8])
    }

    public private(set) var pieces: [Piece] = []
    /// What was left out, in file order without repeats.
    public private(set) var removed: [RemovedMetadata] = []
    /// The EXIF orientation kept (1 when the original had none or said 1).
    public internal(set) var orientation = 1
    /// Size of the original.
    public let inputSize: Int

    init(inputSize: Int) {
        self.inputSize = inputSize
    }

    /// The cleaned file is the original: nothing was removed, so the bytes (and their hash) stay as sent.
    public var isUnchanged: Bool {
        pieces == [.copy(0..<inputSize)]
    }

    /// Size of the cleaned file.
    public var outputSize: Int {
        pieces.reduce(0) { total, piece in
            switch piece {
            case .copy(let range): total + range.count
            case .insert(let bytes): total + bytes.count
            }
        }
    }

    /// Pieces beyond this are refused: adjacent copies merge, so only a file alternating kept and dropped segments
    /// thousands of times gets here, and such a file is hostile rather than a photo.
    static let maxPieces = 4096

    mutating func copy(_ range: Range<Int>) throws(MetadataCleaningError) {
        guard !range.isEmpty else { return }
        if case .copy(let last)? = pieces.last, last.upperBound == range.lowerBound {
            pieces[pieces.count - 1] = .copy(last.lowerBound..<range.upperBound)
            return
        }
        try append(.copy(range))
    }

    mutating func insert(_ bytes: [UInt8]) throws(MetadataCleaningError) {
        try append(.insert(bytes))
    }

    mutating func note(_ metadata: RemovedMetadata) {
        if !removed.contains(metadata) { removed.append(metadata) }
    }

    private mutating func append(_ piece: Piece) throws(MetadataCleaningError) {
        guard pieces.count < Self.maxPieces else { throw .tooManySegments(limit: Self.maxPieces) }
        pieces.append(piece)
    }

    /// Hands the cleaned file to `write` piece by piece (slices of `input`, which must be the planned original).
    public func write<Failure: Error>(from input: UnsafeRawBufferPointer,
                                      to write: (UnsafeRawBufferPointer) throws(Failure) -> Void) throws(Failure) {
        precondition(input.count == inputSize, "a plan is written from the file it was made for")
        for piece in pieces {
            switch piece {
            case .copy(let range):
                try write(UnsafeRawBufferPointer(rebasing: input[range]))
            case .insert(let bytes):
                // Typed throws do not pass through withUnsafeBytes's rethrows: carry the error out by hand.
                var failure: Failure?
                bytes.withUnsafeBytes { raw in
                    do throws(Failure) { try write(raw) } catch { failure = error }
                }
                if let failure { throw failure }
            }
        }
    }

    /// The cleaned file in memory (tests, small files).
    public func bytes(from input: UnsafeRawBufferPointer) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(outputSize)
        write(from: input) { (chunk: UnsafeRawBufferPointer) in output.append(contentsOf: chunk) }
        return output
    }
}

/// Kinds of metadata a cleaning left out.
public enum RemovedMetadata: String, Sendable, Hashable, CaseIterable {
    /// JPEG EXIF (APP1): camera and device details, dates, maker notes, thumbnails; only the orientation is kept.
    case exif
    /// The EXIF held a GPS IFD: the photo's location.
    case location
    /// XMP packets (JPEG APP1, extended XMP).
    case xmp
    /// IPTC / Photoshop resources (JPEG APP13).
    case iptc
    /// Comments (JPEG COM).
    case comment
    /// Other application segments (JPEG APPn other than JFIF, ICC profile and Adobe): MPF, FlashPix, vendor data.
    case applicationSegment
    /// Bytes after the end of the image (JPEG EOI, PNG IEND), such as appended second images.
    case trailingData
    /// PNG `eXIf`.
    case pngExif
    /// PNG `tEXt`, `zTXt`, `iTXt`.
    case pngText
    /// PNG `tIME`.
    case pngTime
    /// Other ancillary PNG chunks not needed to show the picture (private chunks, C2PA, ...).
    case pngOtherChunk
}
