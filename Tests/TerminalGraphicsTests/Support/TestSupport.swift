import Foundation
import TestProcesses
import ImageBuffer

/// Pictures, measures and external tools for the tests.
enum TestSupport {
    /// Reads binary PPM (P6, maxval 255), as ImageMagick writes it. Opaque RGBA out.
    static func readPPM(_ data: [UInt8]) -> RGBAImage? {
        var pos = 2
        guard data.count > 2, data[0] == 0x50, data[1] == 0x36 else { return nil }
        func token() -> Int? {
            while pos < data.count {
                if data[pos] == 0x23 {  // comment to end of line
                    while pos < data.count, data[pos] != 0x0A { pos += 1 }
                } else if [0x20, 0x09, 0x0A, 0x0D].contains(data[pos]) {
                    pos += 1
                } else {
                    break
                }
            }
            var value: Int?
            while pos < data.count, (0x30...0x39).contains(data[pos]) {
                value = (value ?? 0) * 10 + Int(data[pos] - 0x30)
                pos += 1
            }
            return value
        }
        guard let w = token(), let h = token(), let maxval = token(), maxval == 255, w > 0, h > 0 else { return nil }
        pos += 1  // the single whitespace after maxval
        guard data.count >= pos + w * h * 3 else { return nil }
        var px = [UInt8](repeating: 255, count: w * h * 4)
        for i in 0..<(w * h) {
            px[i * 4] = data[pos + i * 3]
            px[i * 4 + 1] = data[pos + i * 3 + 1]
            px[i * 4 + 2] = data[pos + i * 3 + 2]
        }
        return RGBAImage(width: w, height: h, pixels: px)
    }

    static func ppm(_ image: RGBAImage) -> [UInt8] {
        var out = Array("P6\n\(image.width) \(image.height)\n255\n".utf8)
        out.reserveCapacity(out.count + image.width * image.height * 3)
        for i in 0..<(image.width * image.height) {
            out.append(image.pixels[i * 4])
            out.append(image.pixels[i * 4 + 1])
            out.append(image.pixels[i * 4 + 2])
        }
        return out
    }

    /// PSNR in dB over RGB of the pixels opaque in `reference` (alpha >= 128); infinity when identical. `decoded`
    /// pixels left undrawn (alpha 0) count as black.
    static func psnr(_ reference: RGBAImage, _ decoded: RGBAImage) -> Double {
        precondition(reference.width == decoded.width && reference.height == decoded.height, "sizes differ")
        var sum = 0.0
        var n = 0
        for i in 0..<(reference.width * reference.height) where reference.pixels[i * 4 + 3] >= 128 {
            for c in 0..<3 {
                let d = Double(reference.pixels[i * 4 + c]) - Double(decoded.pixels[i * 4 + c])
                sum += d * d
            }
            n += 3
        }
        guard n > 0, sum > 0 else { return .infinity }
        return 10 * log10(255 * 255 / (sum / Double(n)))
    }

    /// A smooth picture with detail: diagonal gradients, a disc and fine stripes (a stand-in photograph).
    static func syntheticPhoto(width: Int, height: Int) -> RGBAImage {
        var px = [UInt8](repeating: 255, count: width * height * 4)
        for y in 0..<height {
            for x in 0..<width {
                let fx = Double(x) / Double(width), fy = Double(y) / Double(height)
                var r = 255 * fx, g = 255 * fy, b = 128 + 100 * sin(fx * 9 + fy * 5)
                let dx = fx - 0.6, dy = fy - 0.4
                if dx * dx + dy * dy < 0.04 {
                    r = 230 - 100 * fy
                    g = 60 + 40 * fx
                    b = 40
                }
                if x < width / 5 && (x / 2) % 2 == 0 { r = 20; g = 20; b = 20 }
                let o = (y * width + x) * 4
                px[o] = UInt8(max(0, min(255, r)))
                px[o + 1] = UInt8(max(0, min(255, g)))
                px[o + 2] = UInt8(max(0, min(255, b)))
            }
        }
        return RGBAImage(width: width, height: height, pixels: px) ?? RGBAImage(width: width, height: height)
    }

    static func solid(width: Int, height: Int, _ r: UInt8, _ g: UInt8, _ b: UInt8, _ a: UInt8 = 255) -> RGBAImage {
        let px = [UInt8]((0..<(width * height)).flatMap { _ in [r, g, b, a] })
        return RGBAImage(width: width, height: height, pixels: px) ?? RGBAImage(width: width, height: height)
    }

    // MARK: external tools

    /// Full path of an executable on PATH (or the usual system directories), nil when absent.
    static func tool(_ name: String) -> String? {
        findExecutable(name)
    }

    struct ToolFailure: Error, CustomStringConvertible {
        var description: String
    }

    /// Runs a tool to completion, off the cooperative pool; stdout as bytes. Throws on a non-zero exit, with its
    /// stderr.
    @discardableResult
    static func run(_ executable: String, _ arguments: [String]) async throws -> [UInt8] {
        try await runToolChecked(executable, arguments)
    }

    /// A fresh directory, removed by the caller.
    static func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tg-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Decodes a PNG to RGBA through ImageMagick (`convert FILE ppm:-`).
    static func readPNG(_ path: String, convert: String) async throws -> RGBAImage {
        let bytes = try await run(convert, [path, "-strip", "-depth", "8", "ppm:-"])
        guard let image = readPPM(bytes) else { throw ToolFailure(description: "convert gave no PPM for \(path)") }
        return image
    }
}
