import ImageBuffer

/// Adaptive palette for the sixel encoder.
///
/// A variance-minimising median cut over a 5-bit-per-channel histogram (each bin keeps the exact sums and sum of
/// squares of its pixels, so bin colours are true means and box errors are exact), then a few k-means (Lloyd) passes
/// over the bins. The cut gives a good start cheaply; k-means moves the colours to where the pixels are, which is
/// what PSNR rewards. The cut stops early once the palette's error is below a target: on flat graphics, extra
/// colours buy PSNR nobody sees and cost sixel bytes (every colour in a band is another pass).
enum ColorQuantizer {
    static let histogramBits = 5
    /// Pixels looked at, at most (a stride over larger images keeps the bin sums within Int32).
    static let maxSampledPixels = 1 << 22

    /// Non-empty histogram bins: weight, mean colour and sum of squared norms of the pixels.
    struct Entries {
        var weight: [Double] = []
        var r: [Double] = []
        var g: [Double] = []
        var b: [Double] = []
        var squares: [Double] = []
        /// 5-bit bin coordinates, used to split boxes by bucket without sorting.
        var coords: [SIMD3<UInt8>] = []
        var count: Int { weight.count }
    }

    /// Builds the histogram of pixels with alpha >= 128.
    static func histogram(_ image: RGBAImage) -> Entries {
        let bits = histogramBits
        let side = 1 << bits
        let shift = 8 - bits
        let binCount = side * side * side
        // count, sum r, sum g, sum b per bin; squares apart (they need 64 bits)
        var bins = [Int32](repeating: 0, count: binCount * 4)
        var squares = [Int64](repeating: 0, count: binCount)
        var used: [Int32] = []
        used.reserveCapacity(4096)
        let n = image.width * image.height
        let step = max(1, (n + maxSampledPixels - 1) / maxSampledPixels)
        image.pixels.withUnsafeBufferPointer { px in
            bins.withUnsafeMutableBufferPointer { hist in
                squares.withUnsafeMutableBufferPointer { sq in
                    guard let p = px.baseAddress, let h = hist.baseAddress, let s = sq.baseAddress else { return }
                    for i in stride(from: 0, to: n, by: step) {
                        let q = p + i * 4
                        if q[3] < 128 { continue }
                        let r = Int(q[0]), g = Int(q[1]), b = Int(q[2])
                        let bin = ((r >> shift) << (2 * bits)) | ((g >> shift) << bits) | (b >> shift)
                        let at = h + bin * 4
                        if at[0] == 0 { used.append(Int32(bin)) }
                        at[0] += 1
                        at[1] += Int32(truncatingIfNeeded: r)
                        at[2] += Int32(truncatingIfNeeded: g)
                        at[3] += Int32(truncatingIfNeeded: b)
                        s[bin] += Int64(r * r + g * g + b * b)
                    }
                }
            }
        }
        var e = Entries()
        e.weight.reserveCapacity(used.count)
        e.r.reserveCapacity(used.count)
        e.g.reserveCapacity(used.count)
        e.b.reserveCapacity(used.count)
        e.squares.reserveCapacity(used.count)
        e.coords.reserveCapacity(used.count)
        let mask = side - 1
        for bin32 in used {
            let bin = Int(bin32)
            let w = Double(bins[bin * 4])
            e.weight.append(w)
            e.r.append(Double(bins[bin * 4 + 1]) / w)
            e.g.append(Double(bins[bin * 4 + 2]) / w)
            e.b.append(Double(bins[bin * 4 + 3]) / w)
            e.squares.append(Double(squares[bin]))
            e.coords.append(SIMD3(UInt8(bin >> (2 * bits)), UInt8((bin >> bits) & mask), UInt8(bin & mask)))
        }
        return e
    }

    /// Up to `maxColors` colours, as 0...255 floats: fewer when the image has fewer distinct bins, or when at least
    /// `minColors` already bring the mean squared error per channel down to `targetMSE`.
    static func palette(_ entries: Entries, maxColors: Int, minColors: Int, targetMSE: Double,
                        refinementPasses: Int) -> [SIMD3<Float>] {
        guard entries.count > 0 else { return [] }
        var centres = medianCut(entries, maxColors: maxColors, minColors: minColors, targetMSE: targetMSE)
        if refinementPasses > 0 {
            centres = kMeans(entries, centres: centres, passes: refinementPasses)
        }
        return centres
    }

    private struct Box {
        var lo: Int
        var hi: Int
        var sse: Double
    }

    /// Moments of a set of entries: weight, weighted sums and weighted sum of squared norms.
    private struct Moments {
        var n = 0.0, r = 0.0, g = 0.0, b = 0.0, q = 0.0
        var sse: Double { n > 0 ? max(0, q - (r * r + g * g + b * b) / n) : 0 }
        static func - (a: Moments, c: Moments) -> Moments {
            Moments(n: a.n - c.n, r: a.r - c.r, g: a.g - c.g, b: a.b - c.b, q: a.q - c.q)
        }
        mutating func add(_ o: Moments) {
            n += o.n; r += o.r; g += o.g; b += o.b; q += o.q
        }
    }

    private static func medianCut(_ e: Entries, maxColors: Int, minColors: Int, targetMSE: Double) -> [SIMD3<Float>] {
        let side = 1 << histogramBits
        var order = Array(0..<e.count)
        var scratch = [Int](repeating: 0, count: e.count)

        func moments(_ lo: Int, _ hi: Int) -> Moments {
            var m = Moments()
            for k in lo..<hi {
                let i = order[k]
                let w = e.weight[i]
                m.n += w
                m.r += w * e.r[i]
                m.g += w * e.g[i]
                m.b += w * e.b[i]
                m.q += e.squares[i]
            }
            return m
        }

        let all = moments(0, e.count)
        let targetSSE = targetMSE * 3 * all.n
        var totalSSE = all.sse
        var boxes = [Box(lo: 0, hi: e.count, sse: all.sse)]
        var buckets = [Moments](repeating: Moments(), count: 3 * side)
        while boxes.count < maxColors && (totalSSE > targetSSE || boxes.count < minColors) {
            // Split the box that contributes most squared error.
            var pick = -1
            var worst = 0.0
            for (i, box) in boxes.enumerated() where box.hi - box.lo > 1 && box.sse > worst {
                worst = box.sse
                pick = i
            }
            if pick < 0 { break }
            let box = boxes[pick]
            for i in buckets.indices { buckets[i] = Moments() }
            for k in box.lo..<box.hi {
                let i = order[k]
                let w = e.weight[i]
                let m = Moments(n: w, r: w * e.r[i], g: w * e.g[i], b: w * e.b[i], q: e.squares[i])
                let c = e.coords[i]
                buckets[Int(c.x)].add(m)
                buckets[side + Int(c.y)].add(m)
                buckets[2 * side + Int(c.z)].add(m)
            }
            var total = Moments()
            for j in 0..<side { total.add(buckets[j]) }
            // Best cut: the one minimising the two halves' summed squared error, over all three axes.
            var bestAxis = -1, bestCut = 0
            var bestSSE = Double.infinity
            for axis in 0..<3 {
                var left = Moments()
                for cut in 0..<(side - 1) {
                    left.add(buckets[axis * side + cut])
                    if left.n == 0 { continue }
                    let right = total - left
                    if right.n <= 0.5 { break }
                    let s = left.sse + right.sse
                    if s < bestSSE {
                        bestSSE = s
                        bestAxis = axis
                        bestCut = cut
                    }
                }
            }
            if bestAxis < 0 {
                // Every entry shares one bucket on all axes (cannot happen with distinct bins); stop splitting it.
                boxes[pick].sse = 0
                continue
            }
            // Stable partition of the box's entries around the cut.
            var l = box.lo
            var r = 0
            for k in box.lo..<box.hi {
                let i = order[k]
                let c = e.coords[i]
                let v = bestAxis == 0 ? c.x : (bestAxis == 1 ? c.y : c.z)
                if Int(v) <= bestCut {
                    order[l] = i
                    l += 1
                } else {
                    scratch[r] = i
                    r += 1
                }
            }
            for k in 0..<r { order[l + k] = scratch[k] }
            let mid = l
            let left = Box(lo: box.lo, hi: mid, sse: moments(box.lo, mid).sse)
            let right = Box(lo: mid, hi: box.hi, sse: moments(mid, box.hi).sse)
            totalSSE += left.sse + right.sse - box.sse
            boxes[pick] = left
            boxes.append(right)
        }
        return boxes.map { box in
            let m = moments(box.lo, box.hi)
            return SIMD3(Float(m.r / m.n), Float(m.g / m.n), Float(m.b / m.n))
        }
    }

    private static func kMeans(_ e: Entries, centres start: [SIMD3<Float>], passes: Int) -> [SIMD3<Float>] {
        var centres = start
        let k = centres.count
        var sums = [SIMD4<Double>](repeating: .zero, count: k)
        for _ in 0..<passes {
            let search = NearestColor(palette: centres)
            for i in sums.indices { sums[i] = .zero }
            for i in 0..<e.count {
                let c = search.nearestByWalk(Float(e.r[i]), Float(e.g[i]), Float(e.b[i]))
                let w = e.weight[i]
                sums[c] += SIMD4(w * e.r[i], w * e.g[i], w * e.b[i], w)
            }
            var moved = false
            for j in 0..<k where sums[j].w > 0 {
                let s = sums[j]
                let next = SIMD3(Float(s.x / s.w), Float(s.y / s.w), Float(s.z / s.w))
                if next != centres[j] { moved = true }
                centres[j] = next
            }
            if !moved { break }
        }
        return centres
    }
}
