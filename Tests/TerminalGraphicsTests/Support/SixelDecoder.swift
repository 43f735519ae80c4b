import ImageBuffer

/// A small, strict sixel decoder for checking the encoder's bytes: it rejects anything the encoder should not send,
/// and records the structure (raster attributes, palette, bands) besides the pixels.
struct DecodedSixel {
    var p2: Int
    var rasterAspect: (Int, Int)?
    var rasterWidth: Int?
    var rasterHeight: Int?
    /// Register → 8-bit colour, converted as libsixel does: (percent * 255 + 50) / 100.
    var palette: [Int: RGB8] = [:]
    var bands = 0
    var repeats = 0
    /// Pixels: alpha 0 where nothing was drawn; sized by the raster attributes.
    var image: RGBAImage
    /// Highest x + 1 and y + 1 that any set bit reached (may exceed the raster).
    var drawnWidth = 0
    var drawnHeight = 0
}

struct RGB8: Equatable, Hashable {
    var r: UInt8, g: UInt8, b: UInt8
}

struct SixelDecodeError: Error, CustomStringConvertible {
    var description: String
    init(_ message: String) { description = message }
}

enum SixelDecoder {
    static func decode(_ bytes: [UInt8]) throws -> DecodedSixel {
        var i = 0
        func expect(_ b: UInt8, _ what: String) throws {
            guard i < bytes.count, bytes[i] == b else { throw SixelDecodeError("expected \(what) at \(i)") }
            i += 1
        }
        func number() -> Int? {
            var v: Int?
            while i < bytes.count, (0x30...0x39).contains(bytes[i]) {
                v = (v ?? 0) * 10 + Int(bytes[i] - 0x30)
                i += 1
            }
            return v
        }
        func numbers() -> [Int?] {
            var list = [number()]
            while i < bytes.count, bytes[i] == 0x3B {
                i += 1
                list.append(number())
            }
            return list
        }
        try expect(0x1B, "ESC")
        try expect(0x50, "P")
        let dcs = i < bytes.count && bytes[i] == 0x71 ? [] : numbers()
        try expect(0x71, "q")
        let p2 = dcs.count > 1 ? (dcs[1] ?? 0) : 0

        var aspect: (Int, Int)?
        var rw: Int?, rh: Int?
        if i < bytes.count, bytes[i] == 0x22 {
            i += 1
            let ra = numbers()
            guard ra.count == 4, let pan = ra[0], let pad = ra[1], let w = ra[2], let h = ra[3] else {
                throw SixelDecodeError("bad raster attributes")
            }
            aspect = (pan, pad)
            rw = w
            rh = h
        }
        // The encoder always sends raster attributes; pixels outside them are only counted.
        guard let w = rw, let h = rh, w > 0, h > 0 else { throw SixelDecodeError("no raster attributes") }
        var image = RGBAImage(width: w, height: h)
        var palette: [Int: RGB8] = [:]
        var current = 0
        var x = 0, band = 0
        var maxX = 0, maxY = 0
        var repeats = 0
        func put(_ ch: UInt8, count: Int) throws {
            let bits = Int(ch - 0x3F)
            if bits != 0 {
                guard let c = palette[current] else { throw SixelDecodeError("drawing with undefined register") }
                for dx in 0..<count {
                    for row in 0..<6 where bits & (1 << row) != 0 {
                        let px = x + dx, py = band * 6 + row
                        if px < w && py < h {
                            let o = (py * w + px) * 4
                            image.pixels[o] = c.r
                            image.pixels[o + 1] = c.g
                            image.pixels[o + 2] = c.b
                            image.pixels[o + 3] = 255
                        }
                        maxX = max(maxX, px + 1)
                        maxY = max(maxY, py + 1)
                    }
                }
            }
            x += count
        }

        while true {
            guard i < bytes.count else { throw SixelDecodeError("no string terminator") }
            let b = bytes[i]
            switch b {
            case 0x1B:
                try expect(0x1B, "ESC")
                try expect(0x5C, "\\ (ST)")
                guard i == bytes.count else { throw SixelDecodeError("bytes after ST") }
                return DecodedSixel(p2: p2, rasterAspect: aspect, rasterWidth: rw, rasterHeight: rh,
                                    palette: palette, bands: band + 1, repeats: repeats, image: image,
                                    drawnWidth: maxX, drawnHeight: maxY)
            case 0x23:  // '#'
                i += 1
                let p = numbers()
                guard let reg = p[0] else { throw SixelDecodeError("# without register") }
                if p.count == 5 {
                    guard p[1] == 2, let r = p[2], let g = p[3], let bl = p[4], r <= 100, g <= 100, bl <= 100 else {
                        throw SixelDecodeError("colour definition not RGB percent: \(p)")
                    }
                    func level(_ v: Int) -> UInt8 { UInt8((v * 255 + 50) / 100) }
                    palette[reg] = RGB8(r: level(r), g: level(g), b: level(bl))
                } else if p.count != 1 {
                    throw SixelDecodeError("bad # parameters \(p)")
                }
                current = reg
            case 0x21:  // '!'
                i += 1
                guard let n = number(), n > 0, i < bytes.count, (0x3F...0x7E).contains(bytes[i]) else {
                    throw SixelDecodeError("bad repeat at \(i)")
                }
                repeats += 1
                try put(bytes[i], count: n)
                i += 1
            case 0x24:  // '$'
                x = 0
                i += 1
            case 0x2D:  // '-'
                x = 0
                band += 1
                i += 1
            case 0x3F...0x7E:
                try put(b, count: 1)
                i += 1
            default:
                throw SixelDecodeError("unexpected byte \(b) at \(i)")
            }
        }

    }
}
