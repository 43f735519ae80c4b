/// The little of EXIF the cleaner needs: IFD0's orientation and whether IFD0 points to GPS data; and the minimal
/// EXIF segment that carries the orientation on.
///
/// Strict where the thumbnailer's reader (`Thumbnailer`'s `Exif`) is lenient: that one must show *something* and
/// takes 1 for anything it cannot read; this one decides what the stored file will say, so an IFD0 it cannot read
/// whole is an error rather than a guess. Only IFD0 is read and no offset is followed, so loops between IFDs cannot
/// make it run on.
enum ExifReader {
    struct Result: Equatable {
        var orientation: Int
        var hasLocation: Bool
    }

    static let orientationTag = 0x0112
    static let gpsTag = 0x8825

    /// Reads TIFF-structured EXIF data (the APP1 payload after "Exif\0\0").
    static func read(tiff: UnsafeRawBufferPointer) throws(MetadataCleaningError) -> Result {
        let n = tiff.count
        guard n >= 8 else { throw .malformedExif("\(n) bytes, shorter than a TIFF header") }
        let littleEndian: Bool
        switch (tiff[0], tiff[1]) {
        case (0x49, 0x49): littleEndian = true  // "II"
        case (0x4D, 0x4D): littleEndian = false // "MM"
        default: throw .malformedExif("unknown byte order")
        }
        func u16(_ at: Int) -> Int {
            let a = Int(tiff[at]), b = Int(tiff[at + 1])
            return littleEndian ? a | b << 8 : a << 8 | b
        }
        func u32(_ at: Int) -> Int {
            littleEndian ? u16(at) | u16(at + 2) << 16 : u16(at) << 16 | u16(at + 2)
        }
        guard u16(2) == 42 else { throw .malformedExif("not a TIFF header") }
        let ifd = u32(4)
        guard ifd >= 8, ifd <= n - 2 else { throw .malformedExif("IFD0 offset \(ifd) is past the end (\(n) bytes)") }
        let count = u16(ifd)
        // 12 bytes per entry: a count the data cannot hold is refused before any entry is read.
        guard count <= (n - ifd - 2) / 12 else {
            throw .malformedExif("IFD0 claims \(count) entries, more than its \(n - ifd - 2) bytes hold")
        }
        var result = Result(orientation: 1, hasLocation: false)
        var orientationSeen = false
        for index in 0..<count {
            let entry = ifd + 2 + index * 12
            switch u16(entry) {
            case orientationTag where !orientationSeen:
                orientationSeen = true
                // SHORT (type 3), count 1: the value sits in the first two bytes of the value field. Anything else
                // is read as 1 by viewers, so it is 1 here too.
                let value = u16(entry + 8)
                if u16(entry + 2) == 3, u32(entry + 4) == 1, (1...8).contains(value) { result.orientation = value }
            case gpsTag:
                result.hasLocation = true
            default:
                break
            }
        }
        return result
    }

    /// An APP1 segment whose EXIF holds only IFD0 with one entry, the orientation (big-endian, 34 bytes).
    static func minimalSegment(orientation: Int) -> [UInt8] {
        let header: [UInt8] = [0xFF, 0xE1, 0x00, 0x22] + Array("Exif\0\0".utf8)
        let tiff: [UInt8] = [0x4D, 0x4D, 0x00, 0x2A, 0x00, 0x00, 0x00, 0x08,  // "MM", 42, IFD0 at 8
                             0x00, 0x01,                                      // one entry
                             0x01, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01,  // orientation, SHORT, count 1
                             0x00, UInt8(orientation), 0x00, 0x00,
                             0x00, 0x00, 0x00, 0x00]                          // no next IFD
        return header + tiff
    }
}
