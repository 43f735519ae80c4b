import ImageBuffer

/// Area-average resampling (each output pixel is the coverage-weighted mean of the source pixels under it), on
/// premultiplied alpha so transparent pixels do not darken edges. Enough here: the server already sends a 320 px
/// thumbnail and previews only shrink it further. Enlarging degrades to nearest-neighbour, which is fine for the
/// rare 1-2 px case.
public enum ImageResize {
    public static func resize(_ image: RGBAImage, width: Int, height: Int) -> RGBAImage {
        let w = max(1, width), h = max(1, height)
        if w == image.width && h == image.height { return image }
        let xs = spans(source: image.width, target: w)
        let ys = spans(source: image.height, target: h)
        // Horizontal pass into premultiplied floats, then vertical.
        var rows = [SIMD4<Float>](repeating: .zero, count: w * image.height)
        image.pixels.withUnsafeBufferPointer { src in
            for y in 0..<image.height {
                for x in 0..<w {
                    var acc = SIMD4<Float>.zero
                    for (i, weight) in xs[x] {
                        let p = (y * image.width + i) * 4
                        let a = Float(src[p + 3])
                        acc += SIMD4(Float(src[p]) * a, Float(src[p + 1]) * a, Float(src[p + 2]) * a, a) * weight
                    }
                    rows[y * w + x] = acc
                }
            }
        }
        var out = [UInt8](repeating: 0, count: w * h * 4)
        for y in 0..<h {
            for x in 0..<w {
                var acc = SIMD4<Float>.zero
                for (j, weight) in ys[y] { acc += rows[j * w + x] * weight }
                let o = (y * w + x) * 4
                let a = acc.w
                if a > 0 {
                    out[o] = UInt8(min(255, max(0, (acc.x / a).rounded())))
                    out[o + 1] = UInt8(min(255, max(0, (acc.y / a).rounded())))
                    out[o + 2] = UInt8(min(255, max(0, (acc.z / a).rounded())))
                    out[o + 3] = UInt8(min(255, max(0, a.rounded())))
                }
            }
        }
        return RGBAImage(width: w, height: h, pixels: out) ?? RGBAImage(width: w, height: h)
    }

    /// For each target index, the source indices it covers with their normalised weights.
    static func spans(source: Int, target: Int) -> [[(Int, Float)]] {
        let scale = Double(source) / Double(target)
        return (0..<target).map { t in
            let from = Double(t) * scale, to = Double(t + 1) * scale
            if scale <= 1 {
                // Enlarging: the source pixel under the target pixel's centre.
                return [(min(source - 1, Int((from + to) / 2)), 1)]
            }
            var list: [(Int, Float)] = []
            var i = Int(from)
            while Double(i) < to && i < source {
                let cover = min(to, Double(i + 1)) - max(from, Double(i))
                if cover > 1e-9 { list.append((i, Float(cover / scale))) }
                i += 1
            }
            return list
        }
    }
}
