import ImageBuffer

/// EXIF orientation. Read by hand because only one tag of IFD0 is needed and pulling in an EXIF library for it
/// would cost more than these bounds-checked lines.
enum Exif {
    /// Orientation tag (0x0112) of IFD0 in TIFF-structured EXIF data (the APP1 payload after "Exif\0\0").
    /// Returns 1 (as stored) when absent or malformed.
    static func orientation(tiff: UnsafeRawBufferPointer) -> Int {
        let n = tiff.count
        guard n >= 8 else { return 1 }
        let littleEndian: Bool
        switch (tiff[0], tiff[1]) {
        case (0x49, 0x49): littleEndian = true  // "II"
        case (0x4D, 0x4D): littleEndian = false // "MM"
        default: return 1
        }
        func u16(_ at: Int) -> Int? {
            guard at >= 0, at <= n - 2 else { return nil }
            let a = Int(tiff[at]), b = Int(tiff[at + 1])
            return littleEndian ? a | b << 8 : a << 8 | b
        }
        func u32(_ at: Int) -> Int? {
            guard let lo = u16(littleEndian ? at : at + 2), let hi = u16(littleEndian ? at + 2 : at) else { return nil }
            return hi << 16 | lo
        }
        guard u16(2) == 42, let ifd = u32(4), let count = u16(ifd) else { return 1 }
        for i in 0..<count {
            let entry = ifd + 2 + i * 12
            guard let tag = u16(entry) else { return 1 } // entries past the end: stop
            guard tag == 0x0112 else { continue }
            // SHORT (type 3), count 1: the value sits in the first two bytes of the value field.
            guard u16(entry + 2) == 3, let value = u16(entry + 8), (1...8).contains(value) else { return 1 }
            return value
        }
        return 1
    }
}

enum Orientation {
    /// True when the orientation swaps width and height (5...8).
    static func swapsAxes(_ orientation: Int) -> Bool { orientation >= 5 && orientation <= 8 }

    /// The image as it should be displayed for an EXIF orientation: each output pixel (x, y) is read from the
    /// stored image at the position the orientation maps it to.
    static func apply(_ orientation: Int, to image: RGBAImage) -> RGBAImage {
        guard (2...8).contains(orientation) else { return image }
        let w = image.width, h = image.height
        let swap = swapsAxes(orientation)
        let ow = swap ? h : w, oh = swap ? w : h
        var out = [UInt32](repeating: 0, count: ow * oh)
        image.pixels.withUnsafeBytes { raw in
            let src = raw.bindMemory(to: UInt32.self) // whole RGBA pixels move as one word
            out.withUnsafeMutableBufferPointer { dst in
                for oy in 0..<oh {
                    let row = oy * ow
                    for ox in 0..<ow {
                        let ix: Int, iy: Int
                        switch orientation {
                        case 2: ix = w - 1 - ox; iy = oy           // mirror horizontally
                        case 3: ix = w - 1 - ox; iy = h - 1 - oy   // rotate 180
                        case 4: ix = ox; iy = h - 1 - oy           // mirror vertically
                        case 5: ix = oy; iy = ox                   // transpose
                        case 6: ix = oy; iy = h - 1 - ox           // rotate 90 clockwise
                        case 7: ix = w - 1 - oy; iy = h - 1 - ox   // transverse
                        default: ix = w - 1 - oy; iy = ox          // 8: rotate 90 counter-clockwise
                        }
                        dst[row + ox] = src[iy * w + ix]
                    }
                }
            }
        }
        let bytes = out.withUnsafeBytes { [UInt8]($0) }
        return RGBAImage(width: ow, height: oh, pixels: bytes) ?? image
    }
}
