#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ImageBuffer

/// Downscaling, written here because neither libjpeg nor libpng resizes beyond libjpeg's n/8 DCT scaling.
///
/// Works on premultiplied alpha (so transparent pixels do not darken edges): an integer box (area) reduction first
/// when the ratio is large, then a separable Lanczos-3 pass. Rows stream through a ring buffer: the horizontal pass
/// computes each source row once, when the vertical pass first needs it, so memory is a few rows, not an image.
enum Resampler {
    /// A source rectangle in pixels of the decoded image; fractional because crops are computed at full
    /// resolution and the image may have been decoded at n/8 scale.
    struct Window {
        var x: Double, y: Double, width: Double, height: Double
    }

    static func resample(_ src: RGBAImage, window: Window, width dstW: Int, height dstH: Int,
                         opaque: Bool) -> RGBAImage {
        // Box factors leave a residual ratio of at least 2 for Lanczos, so the box's blockiness is filtered out.
        let kx = max(1, Int(window.width / Double(dstW) / 2))
        let ky = max(1, Int(window.height / Double(dstH) / 2))
        // Source region covered by the window, in whole pixels.
        let bx0 = max(0, min(src.width - 1, Int(window.x.rounded(.down))))
        let by0 = max(0, min(src.height - 1, Int(window.y.rounded(.down))))
        let bx1 = max(bx0 + 1, min(src.width, Int((window.x + window.width).rounded(.up))))
        let by1 = max(by0 + 1, min(src.height, Int((window.y + window.height).rounded(.up))))
        let boxW = (bx1 - bx0 + kx - 1) / kx
        let boxH = (by1 - by0 + ky - 1) / ky
        let fx = FilterBank(sourceLength: boxW, origin: (window.x - Double(bx0)) / Double(kx),
                            extent: window.width / Double(kx), outputLength: dstW)
        let fy = FilterBank(sourceLength: boxH, origin: (window.y - Double(by0)) / Double(ky),
                            extent: window.height / Double(ky), outputLength: dstH)

        let boxRow = UnsafeMutablePointer<SIMD4<Float>>.allocate(capacity: boxW)
        let ring = UnsafeMutablePointer<SIMD4<Float>>.allocate(capacity: fy.taps * dstW)
        let acc = UnsafeMutablePointer<SIMD4<Float>>.allocate(capacity: dstW)
        defer {
            boxRow.deallocate()
            ring.deallocate()
            acc.deallocate()
        }
        var out = [UInt8](repeating: 0, count: dstW * dstH * 4)
        src.pixels.withUnsafeBufferPointer { srcBuf in
            guard let srcBase = srcBuf.baseAddress else { return }
            out.withUnsafeMutableBufferPointer { outBuf in
                guard let outBase = outBuf.baseAddress else { return }
                // Horizontal weights pre-broadcast to all four channels: one vector load per tap in the hot loop.
                let wx4 = fx.weights.map { SIMD4<Float>(repeating: $0) }
                wx4.withUnsafeBufferPointer { wxBuf in
                    fy.weights.withUnsafeBufferPointer { wyBuf in
                        fx.starts.withUnsafeBufferPointer { sxBuf in
                            guard let wx = wxBuf.baseAddress, let wy = wyBuf.baseAddress,
                                  let sx = sxBuf.baseAddress else { return }
                            var nextRow = 0 // next box row to filter into the ring
                            for y in 0..<dstH {
                                let start = fy.starts[y]
                                let end = start + fy.taps
                                if nextRow < start { nextRow = start }
                                while nextRow < end {
                                    boxRowPremultiplied(srcBase, srcWidth: src.width, srcHeight: src.height,
                                                        x0: bx0, x1: bx1, y0: by0 + nextRow * ky, ky: ky, kx: kx,
                                                        count: boxW, opaque: opaque, into: boxRow)
                                    horizontal(boxRow, taps: fx.taps, starts: sx, weights: wx, count: dstW,
                                               into: ring + (nextRow % fy.taps) * dstW)
                                    nextRow += 1
                                }
                                acc.initialize(repeating: SIMD4<Float>(), count: dstW)
                                for k in 0..<fy.taps {
                                    let w = wy[y * fy.taps + k]
                                    if w == 0 { continue }
                                    let row = ring + ((start + k) % fy.taps) * dstW
                                    for x in 0..<dstW { acc[x] += row[x] * w }
                                }
                                store(acc, count: dstW, opaque: opaque, into: outBase + y * dstW * 4)
                            }
                        }
                    }
                }
            }
        }
        return RGBAImage(width: dstW, height: dstH, pixels: out) ?? RGBAImage(width: dstW, height: dstH)
    }

    /// One row of the box-reduced image: the premultiplied average of each kx × ky block (partial blocks at the
    /// right and bottom edges average the pixels they have).
    @inline(__always)
    private static func boxRowPremultiplied(_ src: UnsafePointer<UInt8>, srcWidth: Int, srcHeight: Int,
                                            x0: Int, x1: Int, y0: Int, ky: Int, kx: Int, count: Int,
                                            opaque: Bool, into row: UnsafeMutablePointer<SIMD4<Float>>) {
        let y1 = min(y0 + ky, srcHeight)
        if kx == 1 && ky == 1 {
            let p = src + (y0 * srcWidth + x0) * 4
            for i in 0..<count {
                row[i] = premultiplied(p + i * 4, opaque: opaque)
            }
            return
        }
        row.initialize(repeating: SIMD4<Float>(), count: count)
        for y in y0..<y1 {
            let p = src + y * srcWidth * 4
            var x = x0
            for i in 0..<count {
                let xe = min(x + kx, x1)
                var sum = SIMD4<Float>()
                while x < xe {
                    sum += premultiplied(p + x * 4, opaque: opaque)
                    x += 1
                }
                row[i] += sum
            }
        }
        // Divide by the block area; the last column/row blocks may be partial.
        let rows = Float(y1 - y0)
        let fullScale = 1 / (rows * Float(kx))
        let lastWidth = (x1 - x0) - (count - 1) * kx
        for i in 0..<(count - 1) { row[i] *= fullScale }
        row[count - 1] *= 1 / (rows * Float(lastWidth))
    }

    @inline(__always)
    private static func premultiplied(_ p: UnsafePointer<UInt8>, opaque: Bool) -> SIMD4<Float> {
        let v = SIMD4<Float>(Float(p[0]), Float(p[1]), Float(p[2]), Float(p[3]))
        if opaque { return v }
        let a = v[3] * (1 / 255)
        return v * SIMD4<Float>(a, a, a, 1)
    }

    @inline(__always)
    private static func horizontal(_ row: UnsafeMutablePointer<SIMD4<Float>>, taps: Int, starts: UnsafePointer<Int>,
                                   weights: UnsafePointer<SIMD4<Float>>, count: Int,
                                   into out: UnsafeMutablePointer<SIMD4<Float>>) {
        for x in 0..<count {
            let s = row + starts[x]
            let w = weights + x &* taps
            var sum = SIMD4<Float>()
            for k in 0..<taps { sum += s[k] * w[k] }
            out[x] = sum
        }
    }

    /// Back to straight (non-premultiplied) 8-bit: colour = premultiplied colour / alpha, so an edge pixel keeps
    /// the colour of the opaque pixels it came from instead of fading towards black.
    @inline(__always)
    private static func store(_ acc: UnsafeMutablePointer<SIMD4<Float>>, count: Int, opaque: Bool,
                              into out: UnsafeMutablePointer<UInt8>) {
        for x in 0..<count {
            var v = acc[x]
            if opaque {
                v[3] = 255
            } else {
                let a = min(max(v[3], 0), 255)
                if a < 0.5 {
                    v = SIMD4<Float>() // fully transparent
                } else {
                    let s = 255 / a
                    v = v * SIMD4<Float>(s, s, s, 0)
                    v[3] = a
                }
            }
            // Clamp, then + 0.5 and truncate: rounds. Scalar on purpose: generic SIMD conversions are not
            // specialised and cost more than the filter.
            let o = out + x &* 4
            o[0] = UInt8(truncatingIfNeeded: Int32(min(max(v[0], 0), 255) + 0.5))
            o[1] = UInt8(truncatingIfNeeded: Int32(min(max(v[1], 0), 255) + 0.5))
            o[2] = UInt8(truncatingIfNeeded: Int32(min(max(v[2], 0), 255) + 0.5))
            o[3] = UInt8(truncatingIfNeeded: Int32(min(max(v[3], 0), 255) + 0.5))
        }
    }
}

/// Lanczos-3 weights for one axis: for each output pixel, `taps` consecutive source pixels from `starts[i]`.
struct FilterBank {
    let taps: Int
    let starts: [Int]
    let weights: [Float]

    /// Maps output pixel i to source position origin + (i + 0.5) * extent / outputLength; edges replicate the
    /// border pixel (clamped indices), weights sum to 1.
    init(sourceLength n: Int, origin: Double, extent: Double, outputLength m: Int) {
        let scale = extent / Double(m)
        let filterScale = max(scale, 1) // widen the kernel when shrinking, so it low-passes
        let support = 3 * filterScale
        // Same size with a whole-pixel origin: copy (Lanczos is 1 at 0 and 0 at other integers, up to rounding).
        if abs(scale - 1) < 1e-9, origin == origin.rounded() {
            taps = 1
            starts = (0..<m).map { min(max(Int(origin) + $0, 0), n - 1) }
            weights = [Float](repeating: 1, count: m)
            return
        }
        let taps = min(n, Int((2 * support).rounded(.up)) + 2)
        var starts = [Int](repeating: 0, count: m)
        var weights = [Float](repeating: 0, count: m * taps)
        var local = [Double](repeating: 0, count: taps)
        for i in 0..<m {
            let center = origin + (Double(i) + 0.5) * scale
            let lo = Int((center - support).rounded(.down))
            let hi = Int((center + support).rounded(.up))
            let cLo = min(max(lo, 0), n - 1)
            let start = max(0, min(cLo, n - taps))
            for k in 0..<taps { local[k] = 0 }
            var sum = 0.0
            for j in lo...hi {
                let w = Self.lanczos3((Double(j) + 0.5 - center) / filterScale)
                if w == 0 { continue }
                let c = min(max(j, 0), n - 1) - start
                guard c >= 0, c < taps else { continue } // cannot happen with taps >= window; stay in bounds
                local[c] += w
                sum += w
            }
            if sum == 0 { // degenerate window: nearest pixel
                local[min(max(Int(center) - start, 0), taps - 1)] = 1
                sum = 1
            }
            starts[i] = start
            for k in 0..<taps { weights[i * taps + k] = Float(local[k] / sum) }
        }
        self.taps = taps
        self.starts = starts
        self.weights = weights
    }

    private static func sinc(_ x: Double) -> Double {
        if x == 0 { return 1 }
        let px = Double.pi * x
        return sin(px) / px
    }

    private static func lanczos3(_ x: Double) -> Double {
        abs(x) < 3 ? Self.sinc(x) * Self.sinc(x / 3) : 0
    }
}
