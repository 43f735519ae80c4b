#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ImageBuffer

/// Downscaling, written here because neither libjpeg nor libpng resizes beyond libjpeg's n/8 DCT scaling.
///
/// One resize in progress: RGBA rows of the source go in top to bottom, in strips of any height; each output row is
/// made as soon as the rows under its filter have arrived, so a decoder can hand over each strip as it decodes it
/// and memory is a few rows, not an image.
///
/// Works on premultiplied alpha (so transparent pixels do not darken edges): rows are converted to premultiplied
/// floats, summed into box rows (an integer kx × ky area reduction when the ratio is large), filtered horizontally
/// with Lanczos-3 into a ring of `taps` rows, and filtered vertically from the ring. Owns its buffers; used by one
/// thread at a time.
final class ResampleStream {
    /// A source rectangle in pixels of the decoded image; fractional because crops are computed at full
    /// resolution and the image may have been decoded at n/8 scale.
    struct Window {
        var x: Double, y: Double, width: Double, height: Double
    }

    let sourceWidth: Int, sourceHeight: Int
    let width: Int, height: Int
    private let opaque: Bool
    private let kx: Int, ky: Int
    /// Source pixels inside the window: columns bx0..<bx1, rows by0..<by1.
    private let bx0: Int, bx1: Int, by0: Int, by1: Int
    private let boxWidth: Int
    private let fx: FilterBank, fy: FilterBank

    private let line: UnsafeMutablePointer<SIMD4<Float>>   // one source row, premultiplied floats
    private let boxRow: UnsafeMutablePointer<SIMD4<Float>> // box sums of the current box row
    private let ring: UnsafeMutablePointer<SIMD4<Float>>   // fy.taps horizontally filtered rows
    private let wx4: UnsafeMutablePointer<SIMD4<Float>>    // horizontal weights broadcast to four channels
    private let ringRows: UnsafeMutablePointer<UnsafeMutablePointer<SIMD4<Float>>> // ring rows of one output row
    private var out: [UInt8]

    private var sourceRow = 0      // rows pushed so far
    private var rowsInBox = 0      // source rows summed into boxRow
    private var boxRowsDone = 0    // box rows filtered into the ring
    private var outputRow = 0      // output rows made

    init(sourceWidth: Int, sourceHeight: Int, window: Window, width dstW: Int, height dstH: Int,
         opaque: Bool) {
        self.sourceWidth = sourceWidth
        self.sourceHeight = sourceHeight
        self.width = dstW
        self.height = dstH
        self.opaque = opaque
        // Box factors leave a residual ratio of at least 2 for Lanczos, so the box's blockiness is filtered out.
        kx = max(1, Int(window.width / Double(dstW) / 2))
        ky = max(1, Int(window.height / Double(dstH) / 2))
        bx0 = max(0, min(sourceWidth - 1, Int(window.x.rounded(.down))))
        by0 = max(0, min(sourceHeight - 1, Int(window.y.rounded(.down))))
        bx1 = max(bx0 + 1, min(sourceWidth, Int((window.x + window.width).rounded(.up))))
        by1 = max(by0 + 1, min(sourceHeight, Int((window.y + window.height).rounded(.up))))
        boxWidth = (bx1 - bx0 + kx - 1) / kx
        let boxHeight = (by1 - by0 + ky - 1) / ky
        fx = FilterBank(sourceLength: boxWidth, origin: (window.x - Double(bx0)) / Double(kx),
                        extent: window.width / Double(kx), outputLength: dstW)
        fy = FilterBank(sourceLength: boxHeight, origin: (window.y - Double(by0)) / Double(ky),
                        extent: window.height / Double(ky), outputLength: dstH)
        line = .allocate(capacity: bx1 - bx0)
        boxRow = .allocate(capacity: boxWidth)
        ring = .allocate(capacity: fy.taps * dstW)
        wx4 = .allocate(capacity: fx.weights.count)
        ringRows = .allocate(capacity: fy.taps)
        for (i, w) in fx.weights.enumerated() { wx4[i] = SIMD4(repeating: w) }
        out = [UInt8](repeating: 0, count: dstW * dstH * 4)
    }

    deinit {
        line.deallocate()
        boxRow.deallocate()
        ring.deallocate()
        wx4.deallocate()
        ringRows.deallocate()
    }

    /// A whole image (rows from the first).
    func push(_ image: RGBAImage) {
        image.pixels.withUnsafeBufferPointer { buffer in
            if let base = buffer.baseAddress { push(base, rows: image.height) }
        }
    }

    /// True once every output row is made (later rows are not needed).
    var isComplete: Bool { outputRow == height }

    /// The next `rows` source rows, `sourceWidth * 4` bytes each, contiguous. Rows past the last are ignored.
    func push(_ pixels: UnsafePointer<UInt8>, rows: Int) {
        let stride = sourceWidth * 4
        for r in 0..<rows {
            guard sourceRow < sourceHeight else { return }
            let y = sourceRow
            sourceRow += 1
            guard y >= by0, y < by1 else { continue }
            convert(pixels + r * stride + bx0 * 4, count: bx1 - bx0)
            take(row: y)
        }
    }

    /// The resized image. Rows the source never delivered (a decoder that stopped early) repeat the last one.
    func finish() -> RGBAImage {
        if sourceRow <= by0 { line.initialize(repeating: SIMD4<Float>(), count: bx1 - bx0) }
        while !isComplete && sourceRow < by1 {
            let y = max(sourceRow, by0)
            sourceRow = y + 1
            take(row: y)
        }
        return RGBAImage(width: width, height: height, pixels: out) ?? RGBAImage(width: width, height: height)
    }

    // MARK: Stages

    /// 8-bit RGBA to float, premultiplied. Two flat loops the compiler vectorises (a per-pixel conversion does not).
    private func convert(_ p: UnsafePointer<UInt8>, count: Int) {
        line.withMemoryRebound(to: Float.self, capacity: count * 4) { f in
            for i in 0..<(count * 4) { f[i] = Float(p[i]) }
        }
        if opaque { return }
        for i in 0..<count {
            let a = line[i][3] * (1 / 255)
            line[i] *= SIMD4<Float>(a, a, a, 1)
        }
    }

    /// Adds the converted source row `y` (the line) to the box row, and finishes the box row at its last row.
    private func take(row y: Int) {
        addLineToBox()
        if rowsInBox == ky || y == by1 - 1 { finishBoxRow() }
    }

    private func addLineToBox() {
        let first = rowsInBox == 0
        rowsInBox += 1
        if kx == 1 {
            if ky == 1 { return } // the line is the box row
            if first {
                boxRow.update(from: line, count: boxWidth)
            } else {
                for i in 0..<boxWidth { boxRow[i] += line[i] }
            }
            return
        }
        let n = bx1 - bx0
        var x = 0
        for i in 0..<boxWidth {
            let xe = min(x + kx, n)
            var sum = line[x]
            x += 1
            while x < xe {
                sum += line[x]
                x += 1
            }
            boxRow[i] = first ? sum : boxRow[i] + sum
        }
    }

    /// Averages the box row, filters it into the ring, and makes every output row whose rows are now all there.
    private func finishBoxRow() {
        let source: UnsafeMutablePointer<SIMD4<Float>>
        if kx == 1 && ky == 1 {
            source = line
        } else {
            // Divide by the block area; the last column's blocks may be narrower.
            let rows = Float(rowsInBox)
            let fullScale = 1 / (rows * Float(kx))
            let lastWidth = (bx1 - bx0) - (boxWidth - 1) * kx
            for i in 0..<(boxWidth - 1) { boxRow[i] *= fullScale }
            boxRow[boxWidth - 1] *= 1 / (rows * Float(lastWidth))
            source = boxRow
        }
        rowsInBox = 0
        let j = boxRowsDone
        boxRowsDone += 1
        fx.starts.withUnsafeBufferPointer { starts in
            horizontal(source, starts: starts, into: ring + (j % fy.taps) * width)
        }
        while outputRow < height, fy.starts[outputRow] + fy.taps - 1 <= j {
            vertical(row: outputRow)
            outputRow += 1
        }
    }

    /// Four output pixels at a time: four independent sums keep the adds from waiting on each other.
    private func horizontal(_ row: UnsafeMutablePointer<SIMD4<Float>>, starts: UnsafeBufferPointer<Int>,
                            into dst: UnsafeMutablePointer<SIMD4<Float>>) {
        let taps = fx.taps
        var x = 0
        while x + 4 <= width {
            let s0 = row + starts[x], s1 = row + starts[x + 1], s2 = row + starts[x + 2], s3 = row + starts[x + 3]
            let w0 = wx4 + x &* taps
            let w1 = w0 + taps, w2 = w1 + taps, w3 = w2 + taps
            var a0 = SIMD4<Float>(), a1 = SIMD4<Float>(), a2 = SIMD4<Float>(), a3 = SIMD4<Float>()
            for k in 0..<taps {
                a0 += s0[k] * w0[k]
                a1 += s1[k] * w1[k]
                a2 += s2[k] * w2[k]
                a3 += s3[k] * w3[k]
            }
            dst[x] = a0
            dst[x + 1] = a1
            dst[x + 2] = a2
            dst[x + 3] = a3
            x += 4
        }
        while x < width {
            let s = row + starts[x]
            let w = wx4 + x &* taps
            var a = SIMD4<Float>()
            for k in 0..<taps { a += s[k] * w[k] }
            dst[x] = a
            x += 1
        }
    }

    /// Output row `y` from the ring: four pixels at a time, as in `horizontal`.
    private func vertical(row y: Int) {
        let taps = fy.taps
        let start = fy.starts[y]
        for k in 0..<taps { ringRows[k] = ring + ((start + k) % taps) * width }
        fy.weights.withUnsafeBufferPointer { weights in
            out.withUnsafeMutableBufferPointer { outBuffer in
                guard let w = weights.baseAddress, let outBase = outBuffer.baseAddress else { return }
                let wy = w + y * taps
                let dst = outBase + y * width * 4
                var x = 0
                while x + 4 <= width {
                    var a0 = SIMD4<Float>(), a1 = SIMD4<Float>(), a2 = SIMD4<Float>(), a3 = SIMD4<Float>()
                    for k in 0..<taps {
                        let r = ringRows[k] + x
                        let wk = wy[k]
                        a0 += r[0] * wk
                        a1 += r[1] * wk
                        a2 += r[2] * wk
                        a3 += r[3] * wk
                    }
                    store(a0, into: dst + x * 4)
                    store(a1, into: dst + x * 4 + 4)
                    store(a2, into: dst + x * 4 + 8)
                    store(a3, into: dst + x * 4 + 12)
                    x += 4
                }
                while x < width {
                    var a = SIMD4<Float>()
                    for k in 0..<taps { a += ringRows[k][x] * wy[k] }
                    store(a, into: dst + x * 4)
                    x += 1
                }
            }
        }
    }

    /// Back to straight (non-premultiplied) 8-bit: colour = premultiplied colour / alpha, so an edge pixel keeps
    /// the colour of the opaque pixels it came from instead of fading towards black.
    @inline(__always)
    private func store(_ value: SIMD4<Float>, into o: UnsafeMutablePointer<UInt8>) {
        var v = value
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
        o[0] = UInt8(truncatingIfNeeded: Int32(min(max(v[0], 0), 255) + 0.5))
        o[1] = UInt8(truncatingIfNeeded: Int32(min(max(v[1], 0), 255) + 0.5))
        o[2] = UInt8(truncatingIfNeeded: Int32(min(max(v[2], 0), 255) + 0.5))
        o[3] = UInt8(truncatingIfNeeded: Int32(min(max(v[3], 0), 255) + 0.5))
    }
}

/// Lanczos-3 weights for one axis: for each output pixel, `taps` consecutive source pixels from `starts[i]`.
struct FilterBank {
    let taps: Int
    let starts: [Int]
    let weights: [Float]

    /// Maps output pixel i to source position origin + (i + 0.5) * extent / outputLength; edges replicate the
    /// border pixel (clamped indices), weights sum to 1. `taps` is the widest run of non-zero weights, so the
    /// filter loops do no work on zeros.
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
        // First pass: each output's weights by clamped source index, from `first[i]`, at most `span` of them.
        let span = min(n, Int((2 * support).rounded(.up)) + 2)
        var first = [Int](repeating: 0, count: m)
        var widths = [Int](repeating: 1, count: m)
        var raw = [Double](repeating: 0, count: m * span)
        var taps = 1
        for i in 0..<m {
            let center = origin + (Double(i) + 0.5) * scale
            let lo = Int((center - support).rounded(.down))
            let hi = Int((center + support).rounded(.up))
            let base = min(max(lo, 0), n - 1)
            var last = base
            var sum = 0.0
            for j in lo...hi {
                let w = Self.lanczos3((Double(j) + 0.5 - center) / filterScale)
                if w == 0 { continue }
                let c = min(max(j, 0), n - 1) - base
                guard c >= 0, c < span else { continue } // cannot happen: the window is at most span wide
                raw[i * span + c] += w
                last = max(last, base + c)
                sum += w
            }
            if sum == 0 { // degenerate window: nearest pixel
                let c = min(max(Int(center) - base, 0), span - 1)
                raw[i * span + c] = 1
                last = max(last, base + c)
                sum = 1
            }
            for c in 0..<span { raw[i * span + c] /= sum }
            first[i] = base
            widths[i] = last - base + 1
            taps = max(taps, widths[i])
        }
        // Second pass: every output gets `taps` weights, its window moved left where it would pass the end.
        var starts = [Int](repeating: 0, count: m)
        var weights = [Float](repeating: 0, count: m * taps)
        for i in 0..<m {
            let start = max(0, min(first[i], n - taps))
            let shift = first[i] - start
            for c in 0..<min(widths[i], span) where shift + c < taps {
                weights[i * taps + shift + c] = Float(raw[i * span + c])
            }
            starts[i] = start
        }
        self.taps = taps
        self.starts = starts
        self.weights = weights
    }

    /// sinc(x) · sinc(x/3) for |x| < 3, else 0. One sine: sin(πx) = 3s − 4s³ with s = sin(πx/3).
    private static func lanczos3(_ x: Double) -> Double {
        guard abs(x) < 3 else { return 0 }
        if x == 0 { return 1 }
        let s = sin(Double.pi * x / 3)
        let sinPiX = s * (3 - 4 * s * s)
        return sinPiX * s * 3 / (Double.pi * Double.pi * x * x)
    }
}
