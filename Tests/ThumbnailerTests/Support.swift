import Foundation
import ImageBuffer
import TestProcesses
import Testing
@testable import Thumbnailer

/// Test inputs outside the package: the shared corpus and external reference tools.
enum Corpus {
    /// The package root: the first directory above this file that holds Package.swift.
    static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while url.path != "/" {
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) {
                return url.path
            }
            url.deleteLastPathComponent()
        }
        return "/"
    }()

    /// `../shared/corpus` relative to the package root (see its README.md).
    static let root = URL(fileURLWithPath: packageRoot).appendingPathComponent("../shared/corpus").standardized.path

    static func path(_ relative: String) -> String { root + "/" + relative }

    /// Bytes of a corpus file; records a clear failure when the corpus is absent.
    static func bytes(_ relative: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> [UInt8] {
        try readFile(path(relative), what: "test corpus file (expected the corpus at \(root), see its README.md)",
                     sourceLocation: sourceLocation)
    }

    static func files(in relative: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String] {
        let dir = path(relative)
        let names = try? FileManager.default.contentsOfDirectory(atPath: dir)
        let found = try #require(names, "test corpus directory \(dir) is missing (see ../shared/corpus/README.md)",
                                 sourceLocation: sourceLocation)
        return found.sorted()
    }

    static let photoDirectory = "/usr/share/backgrounds/mate"
}

func readFile(_ path: String, what: String = "file",
              sourceLocation: SourceLocation = #_sourceLocation) throws -> [UInt8] {
    let data = FileManager.default.contents(atPath: path)
    return [UInt8](try #require(data, "\(what) missing: \(path)", sourceLocation: sourceLocation))
}

/// An external program the test needs as an independent reference; a clear failure when it is not installed.
func requireTool(_ candidates: [String], install: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
    let found = candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    return try #require(found, "required tool not installed (\(candidates.joined(separator: " or "))): \(install)",
                        sourceLocation: sourceLocation)
}

/// Runs a program (off the cooperative pool) and returns its standard output; fails the test on a non-zero exit.
func run(_ tool: String, _ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) async throws -> [UInt8] {
    let result = try await runTool(tool, arguments)
    try #require(result.status == 0, "\(tool) \(arguments.joined(separator: " ")) failed: \(result.stderr)",
                 sourceLocation: sourceLocation)
    return result.stdout
}

/// Binary PPM (P6, maxval 255) as RGBA.
func parsePPM(_ bytes: [UInt8]) -> RGBAImage? {
    var i = 0
    func token() -> Int? {
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "#") {
                while i < bytes.count, bytes[i] != 0x0A { i += 1 }
            } else if bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 {
                i += 1
            } else {
                break
            }
        }
        var value = 0, digits = 0
        while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 {
            value = value * 10 + Int(bytes[i] - 0x30)
            i += 1
            digits += 1
        }
        return digits > 0 ? value : nil
    }
    guard bytes.count > 2, bytes[0] == UInt8(ascii: "P"), bytes[1] == UInt8(ascii: "6") else { return nil }
    i = 2
    guard let w = token(), let h = token(), let maxval = token(), maxval == 255 else { return nil }
    i += 1 // single whitespace before the raster
    guard bytes.count - i >= w * h * 3 else { return nil }
    var rgba = [UInt8](repeating: 255, count: w * h * 4)
    for p in 0..<(w * h) {
        rgba[p * 4] = bytes[i + p * 3]
        rgba[p * 4 + 1] = bytes[i + p * 3 + 1]
        rgba[p * 4 + 2] = bytes[i + p * 3 + 2]
    }
    return RGBAImage(width: w, height: h, pixels: rgba)
}

/// PSNR over the RGB channels, in dB (infinity when identical).
func psnr(_ a: RGBAImage, _ b: RGBAImage) -> Double {
    precondition(a.width == b.width && a.height == b.height)
    var sum = 0.0
    for p in 0..<(a.width * a.height) {
        for c in 0..<3 {
            let d = Double(a.pixels[p * 4 + c]) - Double(b.pixels[p * 4 + c])
            sum += d * d
        }
    }
    let mse = sum / Double(a.width * a.height * 3)
    return mse == 0 ? .infinity : 10 * log10(255 * 255 / mse)
}

func pixel(_ image: RGBAImage, _ x: Int, _ y: Int) -> [UInt8] {
    let i = (y * image.width + x) * 4
    return Array(image.pixels[i..<(i + 4)])
}

/// A synthetic opaque test picture: smooth gradients plus a little deterministic texture.
func testPicture(width: Int, height: Int, seed: UInt32 = 1) -> RGBAImage {
    var state = seed
    var pixels = [UInt8](repeating: 255, count: width * height * 4)
    for y in 0..<height {
        for x in 0..<width {
            state = state &* 1_664_525 &+ 1_013_904_223
            let noise = Int(state >> 28) - 8
            let i = (y * width + x) * 4
            pixels[i] = UInt8(clamping: x * 255 / max(1, width - 1) + noise)
            pixels[i + 1] = UInt8(clamping: y * 255 / max(1, height - 1) + noise)
            pixels[i + 2] = UInt8(clamping: ((x + y) * 3) % 256 + noise)
        }
    }
    return RGBAImage(width: width, height: height, pixels: pixels) ?? RGBAImage(width: width, height: height)
}

// MARK: PNG crafting

enum PNGCraft {
    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            crc ^= UInt32(b)
            for _ in 0..<8 { crc = (crc >> 1) ^ (0xEDB8_8320 & (0 &- (crc & 1))) }
        }
        return ~crc
    }

    static func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }

    static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let body = Array(type.utf8) + data
        return be32(UInt32(data.count)) + body + be32(crc32(body))
    }

    /// zlib stream with one stored (uncompressed) block.
    static func zlibStored(_ data: [UInt8]) -> [UInt8] {
        var a: UInt32 = 1, b: UInt32 = 0
        for byte in data {
            a = (a + UInt32(byte)) % 65521
            b = (b + a) % 65521
        }
        let n = UInt16(data.count)
        return [0x78, 0x01, 0x01, UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8(~n >> 8)] + data
            + be32(b << 16 | a)
    }

    /// An RGBA PNG whose IHDR claims width × height, with `rows` as the (filtered) image data.
    static func png(width: UInt32, height: UInt32, rows: [UInt8]) -> [UInt8] {
        let ihdr = be32(width) + be32(height) + [8, 6, 0, 0, 0]
        return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", ihdr)
            + chunk("IDAT", zlibStored(rows)) + chunk("IEND", [])
    }
}

// MARK: JPEG helpers

enum JPEGCraft {
    /// APP1 Exif segment with IFD0 holding only the orientation tag.
    static func exifSegment(orientation: UInt16, bigEndian: Bool) -> [UInt8] {
        func u16(_ v: UInt16) -> [UInt8] { bigEndian ? [UInt8(v >> 8), UInt8(v & 0xFF)] : [UInt8(v & 0xFF), UInt8(v >> 8)] }
        func u32(_ v: UInt32) -> [UInt8] { bigEndian ? PNGCraft.be32(v) : PNGCraft.be32(v).reversed() }
        var tiff: [UInt8] = bigEndian ? [0x4D, 0x4D] : [0x49, 0x49]
        tiff += u16(42) + u32(8)
        tiff += u16(2) // two entries: an unrelated one first, so the parser must walk the IFD
        tiff += u16(0x010F) + u16(2) + u32(4) + [0x41, 0x42, 0x43, 0] // Make = "ABC"
        tiff += u16(0x0112) + u16(3) + u32(1) + u16(orientation) + [0, 0]
        tiff += u32(0)
        let payload = Array("Exif".utf8) + [0, 0] + tiff
        let length = UInt16(payload.count + 2)
        return [0xFF, 0xE1, UInt8(length >> 8), UInt8(length & 0xFF)] + payload
    }

    /// Inserts a segment right after SOI.
    static func inserting(_ segment: [UInt8], into jpeg: [UInt8]) -> [UInt8] {
        Array(jpeg[0..<2]) + segment + Array(jpeg[2...])
    }

    /// Offsets of markers (the 0xFF byte) at segment level, with their codes.
    static func markers(_ jpeg: [UInt8]) -> [(offset: Int, code: UInt8)] {
        var result: [(Int, UInt8)] = []
        var i = 2
        while i + 1 < jpeg.count {
            guard jpeg[i] == 0xFF else { i += 1; continue }
            let code = jpeg[i + 1]
            if code == 0xFF { i += 1; continue }
            result.append((i, code))
            if code == 0xD9 || i + 3 >= jpeg.count { break }
            let length = Int(jpeg[i + 2]) << 8 | Int(jpeg[i + 3])
            i += 2 + length
            if code == 0xDA { // skip entropy-coded data
                while i + 1 < jpeg.count {
                    if jpeg[i] == 0xFF, jpeg[i + 1] != 0, !(0xD0...0xD7).contains(jpeg[i + 1]) { break }
                    i += 1
                }
            }
        }
        return result
    }
}
