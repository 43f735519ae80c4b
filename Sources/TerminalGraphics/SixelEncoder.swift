import ImageBuffer

/// Sixel encoder. Written here because no Swift sixel library exists, and libsixel would bring a C dependency for
/// a few hundred lines.
///
/// - Palette: adaptive, at most `maxColors` registers (the terminal's count), by a variance-minimising median cut
///   refined with k-means (`ColorQuantizer`). It stops adding colours once the palette error is below `targetMSE`:
///   on flat or smooth pictures more registers buy PSNR nobody sees and cost bytes (every colour present in a band
///   is one more run to send).
/// - Dithering: serpentine Floyd–Steinberg at `ditherStrength`, and errors under `ditherDeadZone` levels are not
///   diffused. Full-strength diffusion of small errors sprinkles isolated pixels over flat areas: noise that
///   lowers PSNR and breaks runs. Measured on photographs against img2sixel, this setting gives higher PSNR and
///   fewer bytes (see Benchmarks/sixel.sh).
/// - Encoding: per 6-row band, each colour's columns are cut into segments at gaps; passes take segments left to
///   right (colours that do not overlap share a pass), a segment may also paint pixels that a later segment paints
///   over (which lengthens `!n` runs), and the most used colours get the shortest register numbers.
///
/// Output: `ESC P q`, or `ESC P 0;1 q` when some pixel is left undrawn (alpha < 128, or canvas padding; P2=1 keeps
/// undrawn pixels transparent), raster attributes `"1;1;W;H`, the palette `#i;2;r;g;b` in percent, the bands,
/// `ESC \`.
public struct SixelEncoder: Sendable {
    /// Colour registers to use at most: 1...256.
    public var maxColors: Int
    /// Fraction of the quantisation error diffused to neighbours (0 = none, 1 = classic Floyd–Steinberg).
    public var ditherStrength: Float = 0.75
    /// Per-channel errors smaller than this many levels are not diffused.
    public var ditherDeadZone: Float = 4
    /// Alternate the scan direction per row, against the diagonal artefacts of one-way diffusion.
    public var serpentine = true
    /// k-means passes after the median cut (most of the gain comes from the first two).
    public var refinementPasses = 3
    /// Mean squared error per channel at which the palette is good enough (0 = always use `maxColors`).
    public var targetMSE: Float = 8
    /// Colours to use at least (if the picture has them) whatever `targetMSE` says: smooth dark gradients reach the
    /// target with a handful of colours, and show bands.
    public var minimumColors = 16

    public init(maxColors: Int = 256) {
        self.maxColors = min(256, max(1, maxColors))
    }

    /// Sixel bytes for `image`. `canvasHeight` (at least the image height) pads the raster with transparent rows, so
    /// a caller can make the picture cover whole text rows.
    public func encode(_ image: RGBAImage, canvasHeight: Int? = nil) -> [UInt8] {
        picture(image, canvasHeight: canvasHeight).sixel()
    }

    /// `image` quantised and dithered once, ready to be drawn whole or in bands of rows (`SixelPicture`).
    public func picture(_ image: RGBAImage, canvasHeight: Int? = nil) -> SixelPicture {
        let width = image.width
        let height = image.height
        let colors = min(256, max(1, maxColors))

        let entries = ColorQuantizer.histogram(image)
        let found = ColorQuantizer.palette(entries, maxColors: colors, minColors: min(colors, max(1, minimumColors)),
                                           targetMSE: Double(max(0, targetMSE)),
                                           refinementPasses: max(0, refinementPasses))
        // What the terminal will show: registers are set in whole percent, so map and diffuse against the rounded
        // colours, not the ideal ones.
        var percent: [SIMD3<Int>] = []
        for c in found {
            let p = SIMD3<Int>(SixelEncoder.percent(c.x), SixelEncoder.percent(c.y), SixelEncoder.percent(c.z))
            if !percent.contains(p) { percent.append(p) }
        }
        let shown = percent.map { p in
            SIMD3<Float>(Float(SixelEncoder.level(p.x)), Float(SixelEncoder.level(p.y)), Float(SixelEncoder.level(p.z)))
        }

        var indices = [UInt16](repeating: SixelEncoder.transparent, count: width * height)
        if !shown.isEmpty {
            indices = ErrorDiffusion(strength: ditherStrength, deadZone: ditherDeadZone, serpentine: serpentine)
                .indices(image, palette: shown)
        }
        return SixelPicture(width: width, height: height, canvasHeight: max(height, canvasHeight ?? height),
                            indices: indices, palette: percent, opaque: image.isOpaque)
    }

    static let transparent: UInt16 = 0xFFFF

    /// 0...255 to the nearest whole percent.
    @inline(__always)
    static func percent(_ v: Float) -> Int {
        Int((min(255, max(0, v)) * 100 / 255).rounded())
    }

    /// A percent back to 8 bits, as decoders (libsixel, xterm) do: (p * 255 + 50) / 100.
    @inline(__always)
    static func level(_ p: Int) -> Int {
        (p * 255 + 50) / 100
    }
}

/// The sixel body: palette definitions, then per band of 6 rows the colours' runs.
///
/// - Registers are numbered by how many bands use them, so the common colours have 1- and 2-digit numbers.
/// - Per band each colour's columns are cut into segments at gaps longer than `gapSplit`; passes (`$` returns to
///   the left edge) take segments left to right, each the first one starting after the previous ended, so colours
///   that do not overlap share a pass instead of each paying for a `$` and a long `?` skip.
/// - Overpainting: a segment may also set bits of pixels that a later segment paints, which lets it repeat the
///   previous character and so lengthens `!n` runs.
enum SixelBands {
    /// Gaps longer than this split a colour's band row into segments (libsixel uses 10; shorter gaps gave smaller
    /// output on the benchmark photographs).
    static let gapSplit = 4

    static func emit(indices: [UInt16], width: Int, height: Int, canvasHeight: Int,
                     percentPalette: [SIMD3<Int>], into sink: inout ByteSink) {
        let colors = percentPalette.count
        let bands = (canvasHeight + 5) / 6
        let imageBands = (height + 5) / 6
        let none = Int(SixelEncoder.transparent)
        indices.withUnsafeBufferPointer { idxBuf in
            guard let idx = idxBuf.baseAddress, colors > 0 else {
                // Nothing drawn: only the band separators, so the image still spans its canvas.
                for _ in 1..<max(1, bands) { sink.append(0x2D) }
                return
            }
            let buffers = BandBuffers(colors: colors, width: width)
            defer { buffers.deallocate() }
            let stamp = buffers.stamp, current = buffers.current, last = buffers.last
            let masks = buffers.masks, used = buffers.used, painter = buffers.painter
            let segColor = buffers.segColor, segStart = buffers.segStart, segEnd = buffers.segEnd
            let order = buffers.order, startCount = buffers.startCount, alive = buffers.alive
            let sequence = buffers.sequence, rank = buffers.rank, columnRanks = buffers.columnRanks
            let rowBits = SIMD8<Int32>(1, 2, 4, 8, 16, 32, 0, 0)

            // Register numbers by use: a colour selected in many bands gets a 1- or 2-digit number.
            var uses = [Int](repeating: 0, count: colors)
            for band in 0..<imageBands {
                let rows = min(6, height - band * 6)
                let start = idx + band * 6 * width
                for k in 0..<(rows * width) {
                    let c = Int(start[k])
                    if c == none || stamp[c] == Int32(band) { continue }
                    stamp[c] = Int32(band)
                    uses[c] += 1
                }
            }
            let ranked = (0..<colors).filter { uses[$0] > 0 }.sorted { uses[$0] > uses[$1] }
            var register = [Int](repeating: -1, count: colors)
            for (n, c) in ranked.enumerated() {
                register[c] = n
                let p = percentPalette[c]
                sink.append(0x23)
                sink.appendDecimal(n)
                sink.append(";2;")
                sink.appendDecimal(p.x)
                sink.append(0x3B)
                sink.appendDecimal(p.y)
                sink.append(0x3B)
                sink.appendDecimal(p.z)
            }
            stamp.update(repeating: -1, count: colors)

            // Defining a colour also selects it.
            var selected = ranked.last ?? -1
            for band in 0..<bands {
                if band > 0 { sink.append(0x2D) }  // '-': next band
                if band >= imageBands { continue }
                let rows = min(6, height - band * 6)
                let top = idx + band * 6 * width
                let tag = Int32(band)
                var usedCount = 0
                var segments = 0
                // Column by column: masks, segments (a new one where a colour's gap grows too long), and which
                // segment paints each pixel.
                for x in 0..<width {
                    for row in 0..<rows {
                        let p = row * width + x
                        let c = Int(top[p])
                        if c == none {
                            painter[p] = -1
                            continue
                        }
                        let m = masks + c * width + x
                        if m.pointee == 0 {
                            if stamp[c] != tag {
                                stamp[c] = tag
                                used[usedCount] = Int32(c)
                                usedCount += 1
                                current[c] = Int32(segments)
                                segColor[segments] = Int32(c)
                                segStart[segments] = Int32(x)
                                segments += 1
                            } else if x - Int(last[c]) > gapSplit {
                                segEnd[Int(current[c])] = last[c]
                                current[c] = Int32(segments)
                                segColor[segments] = Int32(c)
                                segStart[segments] = Int32(x)
                                segments += 1
                            }
                            last[c] = Int32(x)
                        }
                        m.pointee |= UInt8(1 << row)
                        painter[p] = current[c]
                    }
                }
                for u in 0..<usedCount {
                    let c = Int(used[u])
                    segEnd[Int(current[c])] = last[c]
                }
                // Counting sort of segments by start column.
                startCount.update(repeating: 0, count: width + 1)
                for s in 0..<segments { startCount[Int(segStart[s]) + 1] += 1 }
                for x in 0..<width { startCount[x + 1] += startCount[x] }
                for s in 0..<segments {
                    let slot = Int(startCount[Int(segStart[s])])
                    order[slot] = Int32(s)
                    startCount[Int(segStart[s])] += 1
                }
                // startCount[x] is now the first slot of segments starting after column x.
                // Packing into passes; alive is a union-find of "next slot not yet taken".
                for i in 0...segments { alive[i] = Int32(i) }
                @inline(__always) func nextAlive(_ from: Int) -> Int {
                    var i = from
                    while Int(alive[i]) != i {
                        let up = Int(alive[Int(alive[i])])
                        alive[i] = Int32(up)
                        i = up
                    }
                    return i
                }
                var placed = 0
                while placed < segments {
                    var cursor = 0
                    var slot = nextAlive(0)
                    var passStart = true
                    while slot < segments {
                        let s = Int(order[slot])
                        sequence[placed] = Int32(s) | (passStart ? newPassFlag : 0)
                        rank[s] = Int32(placed)
                        placed += 1
                        passStart = false
                        alive[slot] = Int32(slot + 1)
                        cursor = Int(segEnd[s]) + 1
                        if cursor >= width { break }
                        slot = nextAlive(Int(startCount[cursor - 1]))
                    }
                }
                // Emission. A segment may also set bits of pixels painted later (by a segment of higher rank): those
                // bits are free, and choosing them to repeat the previous character, or to cover as much as allowed,
                // turns a ragged row into long `!n` runs. Per column, the ranks of the segments painting its 6 rows
                // (-1: transparent or no row) let one vector compare find the free bits.
                for x in 0..<width {
                    var v = SIMD8<Int32>(repeating: -1)
                    for row in 0..<rows {
                        let q = Int(painter[row * width + x])
                        if q >= 0 { v[row] = rank[q] }
                    }
                    columnRanks[x] = v
                }
                for k in 0..<segments {
                    let entry = sequence[k]
                    let s = Int(entry & ~newPassFlag)
                    if entry & newPassFlag != 0 && k > 0 { sink.append(0x24) }  // '$': back to the left edge
                    let cursor = entry & newPassFlag != 0 ? 0 : Int(segEnd[Int(sequence[k - 1] & ~newPassFlag)]) + 1
                    let c = Int(segColor[s])
                    let from = Int(segStart[s]), to = Int(segEnd[s])
                    if c != selected {
                        sink.append(0x23)
                        sink.appendDecimal(register[c])
                        selected = c
                    }
                    if from > cursor { appendRun(0x3F, from - cursor, &sink) }
                    let m = masks + c * width
                    let thisRank = SIMD8<Int32>(repeating: Int32(k))
                    var run = 0
                    var char: UInt8 = 0xFF
                    for x in from...to {
                        let must = m[x]
                        m[x] = 0
                        let later = columnRanks[x] .> thisRank
                        let free = rowBits.replacing(with: 0, where: .!later).wrappedSum()
                        let allowed = must | UInt8(truncatingIfNeeded: free)
                        let ch: UInt8
                        if char != 0xFF && must & ~char == 0 && char & ~allowed == 0 {
                            ch = char
                        } else {
                            ch = allowed
                        }
                        if ch == char {
                            run += 1
                        } else {
                            if run > 0 { appendRun(0x3F + char, run, &sink) }
                            char = ch
                            run = 1
                        }
                    }
                    appendRun(0x3F + char, run, &sink)
                }
            }
        }
    }

    private static let newPassFlag: Int32 = 1 << 30

    /// `count` copies of a sixel character: `!n` when that is shorter.
    @inline(__always)
    static func appendRun(_ char: UInt8, _ count: Int, _ sink: inout ByteSink) {
        if count > 3 {
            sink.append(0x21)
            sink.appendDecimal(count)
            sink.append(char)
        } else {
            sink.append(char, repeated: count)
        }
    }
}

/// Scratch memory for `SixelBands`, allocated once per image.
private struct BandBuffers {
    let stamp, current, last, used: UnsafeMutablePointer<Int32>
    let masks: UnsafeMutablePointer<UInt8>
    let painter: UnsafeMutablePointer<Int32>
    let segColor, segStart, segEnd, order, alive, sequence, rank: UnsafeMutablePointer<Int32>
    let startCount: UnsafeMutablePointer<Int32>
    let columnRanks: UnsafeMutablePointer<SIMD8<Int32>>
    private let all: [UnsafeMutablePointer<Int32>]

    init(colors: Int, width: Int) {
        // A band has at most 6 * width pixels, so at most that many segments.
        let maxSegments = 6 * width + 1
        func make(_ n: Int, _ value: Int32) -> UnsafeMutablePointer<Int32> {
            let p = UnsafeMutablePointer<Int32>.allocate(capacity: n)
            p.initialize(repeating: value, count: n)
            return p
        }
        stamp = make(colors, -1)
        current = make(colors, 0)
        last = make(colors, 0)
        used = make(colors, 0)
        painter = make(6 * width, -1)
        segColor = make(maxSegments, 0)
        segStart = make(maxSegments, 0)
        segEnd = make(maxSegments, 0)
        order = make(maxSegments, 0)
        alive = make(maxSegments + 1, 0)
        sequence = make(maxSegments, 0)
        rank = make(maxSegments, 0)
        startCount = make(width + 1, 0)
        all = [stamp, current, last, used, painter, segColor, segStart, segEnd, order, alive, sequence, rank,
               startCount]
        masks = .allocate(capacity: colors * width)
        masks.initialize(repeating: 0, count: colors * width)
        columnRanks = .allocate(capacity: width)
        columnRanks.initialize(repeating: SIMD8(repeating: -1), count: width)
    }

    func deallocate() {
        for p in all { p.deallocate() }
        masks.deallocate()
        columnRanks.deallocate()
    }
}
