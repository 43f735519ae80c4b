import Foundation

/// Test inputs shared by the privacy and media tests: the shared corpus (see ../shared/corpus/README.md) and metadata written by hand, byte by byte, so
/// each test knows exactly which tags a file carries.
public enum Corpus {
    public static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while url.path != "/" {
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url.path }
            url.deleteLastPathComponent()
        }
        return "/"
    }()

    public static let root = URL(fileURLWithPath: packageRoot).appendingPathComponent("../shared/corpus").standardized.path

    public struct Missing: Error, CustomStringConvertible {
        public let description: String
    }

    /// A corpus file's bytes; an error naming the missing file when the corpus is absent.
    public static func bytes(_ relative: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: root + "/" + relative) else {
            throw Missing(description: "test corpus file missing: \(root)/\(relative) (see ../shared/corpus/README.md)")
        }
        return [UInt8](data)
    }
}

/// Builds TIFF-structured EXIF data: IFD0 with the entries given, optionally an Exif IFD and a GPS IFD it points to.
public struct ExifBuilder {
    public enum Value {
        case ascii(String)
        case short(Int)
        case long(Int)
        case rationals([(Int, Int)])
        case undefined([UInt8])
    }

    public var littleEndian = true
    public var ifd0: [(tag: Int, value: Value)] = []
    public var exifIFD: [(tag: Int, value: Value)] = []
    public var gpsIFD: [(tag: Int, value: Value)] = []
    /// Where IFD0's next-IFD link points (0: none); tests point it back at IFD0 to make a loop.
    public var nextIFD: Int = 0

    public static let exifPointerTag = 0x8769
    public static let gpsPointerTag = 0x8825

    /// A camera photo's worth of metadata: make, model, owner, serials, maker note, GPS position, orientation.
    public static func camera(orientation: Int?, littleEndian: Bool = true) -> ExifBuilder {
        var builder = ExifBuilder(littleEndian: littleEndian)
        builder.ifd0 = [(0x010F, .ascii("PhoneMaker")), (0x0110, .ascii("Phone 15 Pro")), (0x0131, .ascii("Firmware 17.1"))]
        if let orientation { builder.ifd0.append((0x0112, .short(orientation))) }
        builder.exifIFD = [(0x9003, .ascii("2026:11:30 09:41:00")), (0x927C, .undefined(Array("MAKERNOTE-SECRET-0042".utf8))),
                           (0xA430, .ascii("Jane Customer")), (0xA431, .ascii("SERIAL-BODY-123456")),
                           (0xA435, .ascii("SERIAL-LENS-987654"))]
        builder.gpsIFD = [(0x0001, .ascii("N")), (0x0002, .rationals([(48, 1), (51, 1), (2436, 100)])),
                          (0x0003, .ascii("E")), (0x0004, .rationals([(2, 1), (17, 1), (4020, 100)]))]
        return builder
    }

    public init(littleEndian: Bool = true) {
        self.littleEndian = littleEndian
    }

    func u16(_ v: Int) -> [UInt8] {
        littleEndian ? [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)] : [UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)]
    }

    func u32(_ v: Int) -> [UInt8] {
        littleEndian ? u16(v & 0xFFFF) + u16(v >> 16 & 0xFFFF) : u16(v >> 16 & 0xFFFF) + u16(v & 0xFFFF)
    }

    /// The TIFF bytes (the APP1 payload after "Exif\0\0").
    public func tiff() -> [UInt8] {
        var ifd0 = self.ifd0
        if !exifIFD.isEmpty { ifd0.append((Self.exifPointerTag, .long(0))) }
        if !gpsIFD.isEmpty { ifd0.append((Self.gpsPointerTag, .long(0))) }
        // Layout: header, IFD0, Exif IFD, GPS IFD, then every out-of-line value.
        let size0 = 2 + ifd0.count * 12 + 4
        let sizeExif = exifIFD.isEmpty ? 0 : 2 + exifIFD.count * 12 + 4
        let sizeGPS = gpsIFD.isEmpty ? 0 : 2 + gpsIFD.count * 12 + 4
        let exifAt = 8 + size0, gpsAt = exifAt + sizeExif
        var data: [UInt8] = (littleEndian ? [0x49, 0x49] : [0x4D, 0x4D]) + u16(42) + u32(8)
        var extra: [UInt8] = []
        let extraAt = gpsAt + sizeGPS
        func ifd(_ entries: [(tag: Int, value: Value)], next: Int) -> [UInt8] {
            var out = u16(entries.count)
            for (tag, value) in entries {
                let type: Int, count: Int, payload: [UInt8]
                switch value {
                case .ascii(let s): type = 2; payload = Array(s.utf8) + [0]; count = payload.count
                case .short(let v): type = 3; payload = u16(v) + [0, 0]; count = 1
                case .long(let v):
                    type = 4; count = 1
                    payload = u32(tag == Self.exifPointerTag ? exifAt : tag == Self.gpsPointerTag ? gpsAt : v)
                case .rationals(let r): type = 5; payload = r.flatMap { u32($0.0) + u32($0.1) }; count = r.count
                case .undefined(let b): type = 7; payload = b; count = b.count
                }
                out += u16(tag) + u16(type) + u32(count)
                if payload.count <= 4 {
                    out += payload + [UInt8](repeating: 0, count: 4 - payload.count)
                } else {
                    out += u32(extraAt + extra.count)
                    extra += payload
                    if extra.count % 2 == 1 { extra.append(0) }
                }
            }
            return out + u32(next)
        }
        data += ifd(ifd0, next: nextIFD)
        if !exifIFD.isEmpty { data += ifd(exifIFD, next: 0) }
        if !gpsIFD.isEmpty { data += ifd(gpsIFD, next: 0) }
        return data + extra
    }
}

public enum JPEGBuilder {
    public static func segment(_ marker: UInt8, _ payload: [UInt8]) -> [UInt8] {
        let length = payload.count + 2
        return [0xFF, marker, UInt8(length >> 8), UInt8(length & 0xFF)] + payload
    }

    public static func exifSegment(_ tiff: [UInt8]) -> [UInt8] { segment(0xE1, Array("Exif\0\0".utf8) + tiff) }

    public static func xmpSegment() -> [UInt8] {
        segment(0xE1, Array("http://ns.adobe.com/xap/1.0/\0".utf8) + Array("""
            <x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description exif:GPSLatitude="48,51.406N" \
            tiff:Model="Phone 15 Pro" aux:SerialNumber="SERIAL-XMP-5555"/></rdf:RDF></x:xmpmeta>
            """.utf8))
    }

    public static func iccSegment() -> [UInt8] {
        // Chunk 1 of 1 of a (stand-in) profile: what matters is that it is kept byte for byte.
        segment(0xE2, Array("ICC_PROFILE\0".utf8) + [1, 1] + Array("stand-in ICC profile bytes".utf8))
    }

    /// `base` (a JPEG starting with SOI and APP0 JFIF) with `segments` inserted after its JFIF segment and `trailer`
    /// appended after EOI.
    public static func inserting(_ segments: [[UInt8]], into base: [UInt8], trailer: [UInt8] = []) -> [UInt8] {
        precondition(base[2] == 0xFF && base[3] == 0xE0, "base JPEG starts with APP0")
        let app0End = 4 + (Int(base[4]) << 8 | Int(base[5]))
        return Array(base[..<app0End]) + segments.flatMap { $0 } + Array(base[app0End...]) + trailer
    }
}

public enum PNGBuilder {
    public static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let typeBytes = Array(type.utf8)
        let length = data.count
        return [UInt8(length >> 24 & 0xFF), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)]
            + typeBytes + data + crc32(typeBytes + data)
    }

    public static func crc32(_ bytes: [UInt8]) -> [UInt8] {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? 0xEDB8_8320 ^ (crc >> 1) : crc >> 1 }
        }
        crc ^= 0xFFFF_FFFF
        return [UInt8(crc >> 24), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc & 0xFF)]
    }

    /// `base`'s chunks with `chunks` inserted after IHDR and `late` before IEND.
    public static func inserting(_ chunks: [[UInt8]], late: [[UInt8]] = [], into base: [UInt8]) -> [UInt8] {
        let ihdrEnd = 8 + 12 + 13
        let iendStart = base.count - 12
        return Array(base[..<ihdrEnd]) + chunks.flatMap { $0 } + Array(base[ihdrEnd..<iendStart]) + late.flatMap { $0 }
            + Array(base[iendStart...])
    }
}

extension Array where Element == UInt8 {
    /// Whether `needle` occurs anywhere (metadata strings must not survive cleaning).
    public func contains(_ needle: String) -> Bool {
        let pattern = Array(needle.utf8)
        guard pattern.count <= count else { return false }
        return (0...(count - pattern.count)).contains { start in self[start..<(start + pattern.count)].elementsEqual(pattern) }
    }
}
