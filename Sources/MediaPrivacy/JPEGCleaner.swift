/// Plans a JPEG without its private metadata by rewriting segments, never re-encoding: the pixels stay exactly as
/// sent.
///
/// Kept: JFIF (APP0), the ICC profile (APP2 `ICC_PROFILE`), Adobe (APP14, colour transform), every coding segment
/// (SOF, DHT, DQT, DRI, SOS, ...) and the entropy-coded data, byte for byte. The first EXIF APP1 becomes a minimal
/// EXIF holding only its orientation (nothing when that is 1). Dropped: every other APPn (XMP, extended XMP, MPF,
/// IPTC/Photoshop, vendor data), comments and whatever follows EOI (phones append second images there, with their
/// own EXIF).
enum JPEGCleaner {
    static func plan(_ data: UnsafeRawBufferPointer) throws(MetadataCleaningError) -> CleaningPlan {
        let n = data.count
        guard n >= 4, data[0] == 0xFF, data[1] == 0xD8 else { throw .notFormat(expected: "JPEG") }
        var plan = CleaningPlan(inputSize: n)
        try plan.copy(0..<2)
        var exifSeen = false
        var position = 2
        while position < n {
            guard data[position] == 0xFF else { throw .malformed(what: "JPEG marker", offset: position) }
            // Any number of 0xFF fill bytes may precede a marker.
            var markerAt = position + 1
            while markerAt < n, data[markerAt] == 0xFF { markerAt += 1 }
            guard markerAt < n else { throw .truncated(what: "JPEG marker", offset: position) }
            let marker = data[markerAt]
            let start = position
            switch marker {
            case 0xD9: // EOI: the image ends; anything after it is not part of it.
                try plan.copy(start..<markerAt + 1)
                if markerAt + 1 < n { plan.note(.trailingData) }
                return plan
            case 0xD0...0xD7, 0x01: // RSTn, TEM: no length
                try plan.copy(start..<markerAt + 1)
                position = markerAt + 1
                continue
            case 0x00, 0xD8:
                throw .malformed(what: "JPEG marker 0x\(hex(marker))", offset: markerAt)
            default:
                break
            }
            guard markerAt + 2 < n else { throw .truncated(what: "JPEG segment length", offset: markerAt) }
            let length = Int(data[markerAt + 1]) << 8 | Int(data[markerAt + 2])
            guard length >= 2 else { throw .malformed(what: "JPEG segment length \(length)", offset: markerAt + 1) }
            let end = markerAt + 1 + length
            guard end <= n else { throw .truncated(what: "JPEG segment 0x\(hex(marker))", offset: start) }
            let payload = UnsafeRawBufferPointer(rebasing: data[(markerAt + 3)..<end])
            switch marker {
            case 0xE0 where payload.starts(with: jfif), 0xE2 where payload.starts(with: iccProfile),
                 0xEE where payload.starts(with: adobe):
                try plan.copy(start..<end)
            case 0xE1 where payload.starts(with: exif):
                // Viewers read the orientation from the first EXIF segment only; later ones just go.
                if !exifSeen {
                    exifSeen = true
                    let tiff = UnsafeRawBufferPointer(rebasing: payload[exif.count...])
                    let read = try ExifReader.read(tiff: tiff)
                    plan.orientation = read.orientation
                    if read.hasLocation { plan.note(.location) }
                    if read.orientation != 1 { try plan.insert(ExifReader.minimalSegment(orientation: read.orientation)) }
                }
                plan.note(.exif)
            case 0xE1:
                plan.note(payload.starts(with: xmp) || payload.starts(with: extendedXMP) ? .xmp : .applicationSegment)
            case 0xED:
                plan.note(.iptc)
            case 0xE0...0xEF:
                plan.note(.applicationSegment)
            case 0xFE:
                plan.note(.comment)
            case 0xDA: // SOS: the header, then entropy-coded data up to the next marker that is not RSTn.
                let scanEnd = entropyEnd(data, from: end)
                try plan.copy(start..<scanEnd)
                position = scanEnd
                continue
            default:
                try plan.copy(start..<end)
            }
            position = end
        }
        // No EOI: a file cut off inside its last scan shows as much as it did, with nothing more removed.
        return plan
    }

    /// Where the entropy-coded data starting at `from` ends: at the first 0xFF followed by a marker other than a
    /// stuffed zero or RSTn (fill bytes included), or at the end of the file.
    private static func entropyEnd(_ data: UnsafeRawBufferPointer, from: Int) -> Int {
        let n = data.count
        guard let base = data.baseAddress else { return n }
        var at = from
        while at < n {
            // memchr skips the bulk of the data far faster than a byte loop.
            guard let hit = memchrFF(base + at, n - at) else { return n }
            let ff = base.distance(to: hit)
            var next = ff + 1
            while next < n, data[next] == 0xFF { next += 1 }
            guard next < n else { return n }
            let byte = data[next]
            if byte == 0x00 || (0xD0...0xD7).contains(byte) {
                at = next + 1
                continue
            }
            return ff
        }
        return n
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789ABCDEF".utf8)
        return String(decoding: [digits[Int(byte >> 4)], digits[Int(byte & 0xF)]], as: UTF8.self)
    }

    private static let jfif: [UInt8] = Array("JFIF\0".utf8)
    private static let iccProfile: [UInt8] = Array("ICC_PROFILE\0".utf8)
    private static let adobe: [UInt8] = Array("Adobe".utf8)
    private static let exif: [UInt8] = Array("Exif\0\0".utf8)
    private static let xmp: [UInt8] = Array("http://ns.adobe.com/xap/1.0/\0".utf8)
    private static let extendedXMP: [UInt8] = Array("http://ns.adobe.com/xmp/extension/\0".utf8)
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@inline(__always)
private func memchrFF(_ pointer: UnsafeRawPointer, _ count: Int) -> UnsafeRawPointer? {
    UnsafeRawPointer(memchr(pointer, 0xFF, count))
}
