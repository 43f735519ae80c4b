/// Exact nearest palette colour (least squared RGB distance) for palettes of up to 256 colours.
///
/// Two searches. `nearestByWalk` walks outward along the palette's principal axis from the query's projection (the
/// projection difference is a lower bound of the distance, so the walk stops early); k-means uses it on distinct
/// histogram colours. `nearest`, for the dithering loop where nearby colours repeat, keeps per cell of 8 levels per
/// channel the short list of colours that can be nearest somewhere in the cell (those that beat the cell centre's
/// nearest colour at some corner-side point of the cell), built on first use; a lookup then compares a few colours.
///
/// Noncopyable and a struct so the hot loop reads its pointers without reference counting or dynamic exclusivity
/// checks.
struct NearestColor: ~Copyable {
    let count: Int
    // Palette sorted by key (projection on the principal axis), structure of arrays.
    private let key: UnsafeMutablePointer<Float>
    private let cr: UnsafeMutablePointer<Float>
    private let cg: UnsafeMutablePointer<Float>
    private let cb: UnsafeMutablePointer<Float>
    private let original: UnsafeMutablePointer<Int32>
    /// First sorted position whose key is >= each integer key value (offset by `keyOffset`).
    private let start: UnsafeMutablePointer<Int32>
    private let ux: Float, uy: Float, uz: Float
    // Cell lists: start in `pool` (-1 = not built yet) and length; pool entries are r, g, b and the palette index.
    private let cellStart: UnsafeMutablePointer<Int32>
    private let cellLength: UnsafeMutablePointer<Int32>
    private var pool: UnsafeMutablePointer<SIMD4<Float>>
    private var poolCount = 0
    private var poolCapacity: Int
    /// Scratch for building a cell: candidate positions.
    private let scratchPosition: UnsafeMutablePointer<Int32>

    private static let keyOffset = 448  // |projection| <= 255 * sqrt(3) < 442
    private static let startCount = 2 * keyOffset + 2
    private static let cellShift = 3
    private static let cellSide = 1 << (8 - cellShift)
    private static let cellCount = cellSide * cellSide * cellSide

    /// `palette` must not be empty.
    init(palette: [SIMD3<Float>]) {
        count = palette.count
        let n = max(1, count)
        key = .allocate(capacity: n)
        cr = .allocate(capacity: n)
        cg = .allocate(capacity: n)
        cb = .allocate(capacity: n)
        original = .allocate(capacity: n)
        scratchPosition = .allocate(capacity: n)
        key.initialize(repeating: 0, count: n)
        cr.initialize(repeating: 0, count: n)
        cg.initialize(repeating: 0, count: n)
        cb.initialize(repeating: 0, count: n)
        original.initialize(repeating: 0, count: n)
        start = .allocate(capacity: NearestColor.startCount)
        cellStart = .allocate(capacity: NearestColor.cellCount)
        cellStart.initialize(repeating: -1, count: NearestColor.cellCount)
        cellLength = .allocate(capacity: NearestColor.cellCount)
        cellLength.initialize(repeating: 0, count: NearestColor.cellCount)
        poolCapacity = 16 * 1024
        pool = .allocate(capacity: poolCapacity)

        // Principal axis of the palette by power iteration on its covariance.
        var mean = SIMD3<Float>.zero
        for c in palette { mean += c }
        mean /= Float(n)
        var cov = (SIMD3<Float>.zero, SIMD3<Float>.zero, SIMD3<Float>.zero)
        for c in palette {
            let d = c - mean
            cov.0 += d * d.x
            cov.1 += d * d.y
            cov.2 += d * d.z
        }
        var u = SIMD3<Float>(1, 1, 1)
        for _ in 0..<8 {
            let v = cov.0 * u.x + cov.1 * u.y + cov.2 * u.z
            let len = (v * v).sum().squareRoot()
            if !(len > 1e-6) { break }
            u = v / len
        }
        // Slightly shorter than unit length, so rounding can never make a projection gap exceed the true distance
        // (the walks stop on that bound).
        u *= (1 - 1e-5) / (u * u).sum().squareRoot()
        ux = u.x
        uy = u.y
        uz = u.z
        let keys = palette.map { ($0 * u).sum() }
        let sorted = palette.indices.sorted { keys[$0] < keys[$1] }
        for (p, i) in sorted.enumerated() {
            let c = palette[i]
            key[p] = keys[i]
            cr[p] = c.x
            cg[p] = c.y
            cb[p] = c.z
            original[p] = Int32(i)
        }
        var p = 0
        for v in 0..<NearestColor.startCount {
            let kv = Float(v - NearestColor.keyOffset)
            while p < count && key[p] < kv { p += 1 }
            start[v] = Int32(p)
        }
    }

    deinit {
        key.deallocate()
        cr.deallocate()
        cg.deallocate()
        cb.deallocate()
        original.deallocate()
        start.deallocate()
        cellStart.deallocate()
        cellLength.deallocate()
        pool.deallocate()
        scratchPosition.deallocate()
    }

    /// Palette index of the nearest colour to a colour in 0...255.
    @inline(__always)
    mutating func nearest(_ r: Float, _ g: Float, _ b: Float) -> Int {
        let shift = NearestColor.cellShift
        let ri = Int(r) >> shift, gi = Int(g) >> shift, bi = Int(b) >> shift
        let cell = ri << (16 - 2 * shift) | gi << (8 - shift) | bi
        var first = Int(cellStart[cell])
        if first < 0 {
            first = buildCell(cell, ri, gi, bi)
        }
        let length = Int(cellLength[cell])
        let list = pool + first
        var best = list[0]
        if length == 1 { return Int(best.w) }
        var bestDistance: Float
        do {
            let dr = best.x - r, dg = best.y - g, db = best.z - b
            bestDistance = dr * dr + dg * dg + db * db
        }
        for j in 1..<length {
            let c = list[j]
            let dr = c.x - r, dg = c.y - g, db = c.z - b
            let d = dr * dr + dg * dg + db * db
            if d < bestDistance {
                bestDistance = d
                best = c
            }
        }
        return Int(best.w)
    }

    /// Palette index of the nearest colour, without the cell lists (for one-off queries).
    func nearestByWalk(_ r: Float, _ g: Float, _ b: Float) -> Int {
        Int(original[walk(r, g, b).position])
    }

    @inline(__always)
    private func lowerBound(_ k: Float) -> Int {
        let slot = min(NearestColor.startCount - 1, max(0, Int(k.rounded(.down)) + NearestColor.keyOffset))
        var lo = Int(start[slot])
        while lo < count && key[lo] < k { lo += 1 }
        return lo
    }

    /// Sorted position and squared distance of the nearest colour.
    private func walk(_ r: Float, _ g: Float, _ b: Float) -> (position: Int, distance: Float) {
        var best = Float.infinity
        var bestP = 0
        let k = r * ux + g * uy + b * uz
        let lo = lowerBound(k)
        var up = lo
        while up < count {
            let dk = key[up] - k
            if dk * dk >= best { break }
            let dr = cr[up] - r, dg = cg[up] - g, db = cb[up] - b
            let d = dr * dr + dg * dg + db * db
            if d < best {
                best = d
                bestP = up
            }
            up += 1
        }
        var down = lo - 1
        while down >= 0 {
            let dk = k - key[down]
            if dk * dk >= best { break }
            let dr = cr[down] - r, dg = cg[down] - g, db = cb[down] - b
            let d = dr * dr + dg * dg + db * db
            if d < best {
                best = d
                bestP = down
            }
            down -= 1
        }
        return (bestP, best)
    }

    /// Builds the candidate list of a cell and returns its start in the pool.
    private mutating func buildCell(_ cell: Int, _ ri: Int, _ gi: Int, _ bi: Int) -> Int {
        let side = Float(1 << NearestColor.cellShift)
        let loR = Float(ri) * side, loG = Float(gi) * side, loB = Float(bi) * side
        // Queries are below lo + side (integer truncation), so the closed box is safe.
        let hiR = loR + side, hiG = loG + side, hiB = loB + side
        let mR = loR + side / 2, mG = loG + side / 2, mB = loB + side / 2
        let halfDiagonal = side * 0.5 * Float(3).squareRoot()
        let centreNearest = walk(mR, mG, mB)
        // A colour farther from the centre than (nearest + 2 * half-diagonal) cannot win anywhere in the cell.
        let radius = centreNearest.distance.squareRoot() + 2 * halfDiagonal
        let bound = radius * radius
        // A colour can only be nearest somewhere in the cell if it beats the centre's nearest colour A somewhere
        // there: |p - B|² < |p - A|² ⟺ 2p·(A - B) < |A|² - |B|², a linear test whose minimum over the box is at
        // the corner picked axis by axis. Much tighter than comparing distance bounds.
        let c0 = centreNearest.position
        let aR = cr[c0], aG = cg[c0], aB = cb[c0]
        let aNorm = aR * aR + aG * aG + aB * aB
        var found = 0
        @inline(__always)
        func consider(_ p: Int) {
            if p == c0 { return }
            let r = cr[p], g = cg[p], b = cb[p]
            let er = r - mR, eg = g - mG, eb = b - mB
            if er * er + eg * eg + eb * eb > bound { return }
            let dR = aR - r, dG = aG - g, dB = aB - b
            let least = 2 * ((dR > 0 ? loR : hiR) * dR + (dG > 0 ? loG : hiG) * dG + (dB > 0 ? loB : hiB) * dB)
            if least >= aNorm - (r * r + g * g + b * b) { return }
            scratchPosition[found] = Int32(p)
            found += 1
        }
        let k = mR * ux + mG * uy + mB * uz
        let from = lowerBound(k)
        var up = from
        while up < count {
            let dk = key[up] - k
            if dk * dk > bound { break }
            consider(up)
            up += 1
        }
        var down = from - 1
        while down >= 0 {
            let dk = k - key[down]
            if dk * dk > bound { break }
            consider(down)
            down -= 1
        }
        if poolCount + found + 1 > poolCapacity {
            let grown = max(poolCapacity * 2, poolCount + found + 1)
            let bigger = UnsafeMutablePointer<SIMD4<Float>>.allocate(capacity: grown)
            bigger.moveInitialize(from: pool, count: poolCount)
            pool.deallocate()
            pool = bigger
            poolCapacity = grown
        }
        // The centre's nearest first: it is the usual answer, so the scan rarely updates its best.
        let first = poolCount
        (pool + poolCount).initialize(to: SIMD4(aR, aG, aB, Float(original[c0])))
        poolCount += 1
        for j in 0..<found {
            let p = Int(scratchPosition[j])
            (pool + poolCount).initialize(to: SIMD4(cr[p], cg[p], cb[p], Float(original[p])))
            poolCount += 1
        }
        cellStart[cell] = Int32(first)
        cellLength[cell] = Int32(poolCount - first)
        return first
    }
}
