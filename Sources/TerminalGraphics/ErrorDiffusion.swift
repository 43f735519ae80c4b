import ImageBuffer

/// Serpentine Floyd–Steinberg error diffusion of an RGBA image into indices of a fixed palette: the sixel encoder
/// uses it with the palette it chose, the half-block renderer with the terminal's 256 colours. Pixels with alpha
/// below 128 stay `SixelEncoder.transparent` and neither receive nor pass on error.
struct ErrorDiffusion {
    /// Fraction of the quantisation error diffused to neighbours (0 = none, 1 = classic Floyd–Steinberg).
    var strength: Float
    /// Per-channel errors smaller than this many levels are not diffused.
    var deadZone: Float
    /// Alternate the scan direction per row, against the diagonal artefacts of one-way diffusion.
    var serpentine: Bool
    /// When above 0, a pixel takes the colour the diffused error points to only if its squared distance to the
    /// pixel's own colour is within `slack` times that of the nearest colour; otherwise the nearest. Dithering then
    /// happens where two palette colours are about as near (the edges of posterised patches), and a coarse fixed
    /// palette does not sprinkle far colours over flat areas.
    var slack: Float = 0

    /// One index into `palette` per pixel, row by row.
    func indices(_ image: RGBAImage, palette: [SIMD3<Float>]) -> [UInt16] {
        var indices = [UInt16](repeating: SixelEncoder.transparent, count: image.width * image.height)
        guard !palette.isEmpty, image.width > 0 else { return indices }
        let width = image.width
        let stride = (width + 2) * 3
        var search = NearestColor(palette: palette)
        let rows = UnsafeMutablePointer<Float>.allocate(capacity: 2 * stride)
        let pal = UnsafeMutablePointer<Float>.allocate(capacity: palette.count * 3)
        defer {
            rows.deallocate()
            pal.deallocate()
        }
        for (i, c) in palette.enumerated() {
            pal[i * 3] = c.x
            pal[i * 3 + 1] = c.y
            pal[i * 3 + 2] = c.z
        }
        rows.initialize(repeating: 0, count: 2 * stride)
        image.pixels.withUnsafeBufferPointer { pxBuf in
            indices.withUnsafeMutableBufferPointer { outBuf in
                guard let px = pxBuf.baseAddress, let out = outBuf.baseAddress else { return }
                Self.diffuse(px, width: width, height: image.height, search: &search, palette: pal,
                             strength: strength, dead: deadZone, serpentine: serpentine, slack: slack, rows: rows,
                             out: out)
            }
        }
        return indices
    }

    private static func diffuse(_ px: UnsafePointer<UInt8>, width: Int, height: Int, search: inout NearestColor,
                                palette pal: UnsafePointer<Float>, strength: Float, dead: Float, serpentine: Bool,
                                slack: Float, rows: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<UInt16>) {
        let stride = (width + 2) * 3
        let w7 = strength * (7.0 / 16), w3 = strength * (3.0 / 16)
        let w5 = strength * (5.0 / 16), w1 = strength * (1.0 / 16)
        for y in 0..<height {
            // Error for this row, and for the row below (cleared before use); one pixel of margin each side.
            let cur = rows + (y & 1) * stride
            let next = rows + ((y + 1) & 1) * stride
            next.update(repeating: 0, count: stride)
            let forward = !serpentine || (y & 1) == 0
            let step = forward ? 3 : -3
            let line = px + y * width * 4
            let outLine = out + y * width
            var x = forward ? 0 : width - 1
            let dx = forward ? 1 : -1
            for _ in 0..<width {
                defer { x += dx }
                let p = line + x * 4
                if p[3] < 128 { continue }
                let e = cur + (x + 1) * 3
                let r = min(255, max(0, Float(p[0]) + e[0]))
                let g = min(255, max(0, Float(p[1]) + e[1]))
                let b = min(255, max(0, Float(p[2]) + e[2]))
                var c = search.nearest(r, g, b)
                if slack > 0 {
                    let pr = Float(p[0]), pg = Float(p[1]), pb = Float(p[2])
                    let own = search.nearest(pr, pg, pb)
                    if own != c {
                        @inline(__always) func distance(_ i: Int) -> Float {
                            let q = pal + i * 3
                            return (q[0] - pr) * (q[0] - pr) + (q[1] - pg) * (q[1] - pg) + (q[2] - pb) * (q[2] - pb)
                        }
                        if distance(c) > slack * distance(own) + 1 { c = own }
                    }
                }
                outLine[x] = UInt16(truncatingIfNeeded: c)
                let q = pal + c * 3
                var er = r - q[0], eg = g - q[1], eb = b - q[2]
                if abs(er) < dead { er = 0 }
                if abs(eg) < dead { eg = 0 }
                if abs(eb) < dead { eb = 0 }
                let ahead = e + step
                ahead[0] += er * w7
                ahead[1] += eg * w7
                ahead[2] += eb * w7
                let below = next + (x + 1) * 3
                let belowBehind = below - step, belowAhead = below + step
                belowBehind[0] += er * w3
                belowBehind[1] += eg * w3
                belowBehind[2] += eb * w3
                below[0] += er * w5
                below[1] += eg * w5
                below[2] += eb * w5
                belowAhead[0] += er * w1
                belowAhead[1] += eg * w1
                belowAhead[2] += eb * w1
            }
        }
    }
}
