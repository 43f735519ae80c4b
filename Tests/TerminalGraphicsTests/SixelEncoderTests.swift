import ImageBuffer
import Testing
@testable import TerminalGraphics

@Suite("Sixel encoder, checked by the test decoder")
struct SixelEncoderTests {
    @Test("round trip: framing, raster attributes, size and PSNR")
    func roundTrip() throws {
        let source = TestSupport.syntheticPhoto(width: 160, height: 100)
        let bytes = SixelEncoder().encode(source)
        #expect(Array(bytes.prefix(3)) == [0x1B, 0x50, 0x71], "opaque picture: plain ESC P q")
        #expect(Array(bytes.suffix(2)) == [0x1B, 0x5C], "ends with ST")
        let decoded = try SixelDecoder.decode(bytes)
        #expect(decoded.rasterAspect ?? (0, 0) == (1, 1))
        #expect(decoded.rasterWidth == 160)
        #expect(decoded.rasterHeight == 100)
        #expect(decoded.bands == 17, "100 rows are 17 bands of 6")
        #expect(decoded.drawnWidth == 160 && decoded.drawnHeight == 100, "nothing drawn outside the raster")
        #expect(decoded.image.isOpaque, "every pixel drawn")
        #expect(decoded.palette.count <= 256)
        #expect(decoded.repeats > 0, "run-length encoding used")
        // This picture is harder than a photograph (fine stripes, a full-range colour swirl): img2sixel gets 28.4 dB.
        let psnr = TestSupport.psnr(source, decoded.image)
        #expect(psnr > 31, "PSNR \(psnr) dB")
    }

    @Test("the register limit is obeyed")
    func registerLimit() throws {
        let source = TestSupport.syntheticPhoto(width: 96, height: 60)
        for limit in [2, 16, 64] {
            var encoder = SixelEncoder(maxColors: limit)
            encoder.minimumColors = 2
            let decoded = try SixelDecoder.decode(encoder.encode(source))
            #expect(decoded.palette.count <= limit, "limit \(limit): \(decoded.palette.count) registers")
            #expect(decoded.palette.keys.allSatisfy { $0 < limit }, "register numbers below \(limit)")
            let colours = Set(stride(from: 0, to: decoded.image.pixels.count, by: 4).map {
                RGB8(r: decoded.image.pixels[$0], g: decoded.image.pixels[$0 + 1], b: decoded.image.pixels[$0 + 2])
            })
            #expect(colours.count <= limit)
        }
        // More registers, better picture.
        let few = try SixelDecoder.decode(SixelEncoder(maxColors: 16).encode(source))
        let many = try SixelDecoder.decode(SixelEncoder(maxColors: 256).encode(source))
        #expect(TestSupport.psnr(source, many.image) > TestSupport.psnr(source, few.image) + 3)
    }

    @Test("pixels with alpha < 128 are left undrawn, with P2=1")
    func transparency() throws {
        var source = TestSupport.syntheticPhoto(width: 40, height: 30)
        // A transparent frame 5 px wide and a half-transparent (still drawn) row.
        for y in 0..<30 {
            for x in 0..<40 where x < 5 || x >= 35 || y < 5 || y >= 25 {
                source.pixels[(y * 40 + x) * 4 + 3] = 0
            }
        }
        for x in 5..<35 { source.pixels[(10 * 40 + x) * 4 + 3] = 200 }
        let bytes = SixelEncoder().encode(source)
        let decoded = try SixelDecoder.decode(bytes)
        #expect(decoded.p2 == 1)
        for y in 0..<30 {
            for x in 0..<40 {
                let drawn = decoded.image.pixels[(y * 40 + x) * 4 + 3] != 0
                let opaque = source.pixels[(y * 40 + x) * 4 + 3] >= 128
                #expect(drawn == opaque, "pixel \(x),\(y)")
            }
        }
        #expect(TestSupport.psnr(source, decoded.image) > 30)
    }

    @Test("canvas padding: raster height grows, extra rows stay transparent")
    func canvasPadding() throws {
        let source = TestSupport.syntheticPhoto(width: 30, height: 20)
        let decoded = try SixelDecoder.decode(SixelEncoder().encode(source, canvasHeight: 36))
        #expect(decoded.p2 == 1, "padding needs transparent background")
        #expect(decoded.rasterHeight == 36)
        #expect(decoded.bands == 6, "36 rows: 6 bands, empty ones included")
        #expect(decoded.drawnHeight == 20)
        let top = decoded.image.pixels[((19 * 30) + 3) * 4 + 3], padding = decoded.image.pixels[((20 * 30) + 3) * 4 + 3]
        #expect(top == 255 && padding == 0)
    }

    @Test("a band of rows of a picture is drawn with exactly the whole picture's pixels for those rows")
    func clippedRows() throws {
        let source = TestSupport.syntheticPhoto(width: 48, height: 40)
        let picture = SixelEncoder().picture(source, canvasHeight: 51)
        let whole = try SixelDecoder.decode(picture.sixel())
        #expect(whole.rasterHeight == 51)
        // Rows 17..<34: a text row of 17 pixels, as a chat screen clips a preview; not a multiple of 6.
        let middle = try SixelDecoder.decode(picture.sixel(pixelRows: 17..<34))
        #expect(middle.rasterWidth == 48 && middle.rasterHeight == 17)
        #expect(middle.drawnHeight == 17, "nothing is drawn below the clip, even in its last partial band")
        for y in 0..<17 {
            for x in 0..<48 {
                let a = ((17 + y) * 48 + x) * 4, b = (y * 48 + x) * 4
                #expect(Array(whole.image.pixels[a..<(a + 4)]) == Array(middle.image.pixels[b..<(b + 4)]), "pixel \(x),\(y)")
            }
        }
        // The last rows reach into the padding: only 6 picture rows, the rest transparent; past the canvas, nothing.
        let bottom = try SixelDecoder.decode(picture.sixel(pixelRows: 34..<68))
        #expect(bottom.rasterHeight == 17 && bottom.drawnHeight == 6 && bottom.p2 == 1)
        #expect(picture.sixel(pixelRows: 60..<80).isEmpty)
    }

    @Test("flat colours are exact and tiny")
    func flatColours() throws {
        // Two colours that are whole percents survive exactly; a wide flat area is one run per band.
        var source = TestSupport.solid(width: 300, height: 12, 255, 0, 0)
        for i in stride(from: 0, to: source.pixels.count, by: 4) where (i / 4) % 300 >= 150 {
            source.pixels[i] = 0
            source.pixels[i + 2] = 255
        }
        let bytes = SixelEncoder().encode(source)
        let decoded = try SixelDecoder.decode(bytes)
        #expect(TestSupport.psnr(source, decoded.image) == .infinity)
        #expect(decoded.palette.count == 2)
        #expect(bytes.count < 80, "\(bytes.count) bytes: \(String(decoding: bytes, as: UTF8.self))")
    }

    @Test("a fully transparent picture and a single pixel still make valid sixel")
    func edgeCases() throws {
        let clear = RGBAImage(width: 7, height: 13)
        let empty = try SixelDecoder.decode(SixelEncoder().encode(clear))
        #expect(empty.rasterWidth == 7 && empty.rasterHeight == 13)
        #expect(empty.palette.isEmpty)
        #expect(empty.drawnWidth == 0)
        #expect(empty.bands == 3)

        let one = TestSupport.solid(width: 1, height: 1, 10, 200, 30)
        let single = try SixelDecoder.decode(SixelEncoder().encode(one))
        #expect(single.rasterWidth == 1 && single.rasterHeight == 1)
        #expect(TestSupport.psnr(one, single.image) > 45)
    }

    @Test("percent conversion matches decoders")
    func percentLevels() {
        // Every level maps to the nearest percent, and back within half a percent step.
        for v in 0...255 {
            let p = SixelEncoder.percent(Float(v))
            #expect((0...100).contains(p))
            #expect(abs(SixelEncoder.level(p) - v) <= 2, "level \(v) -> \(p)%")
        }
        #expect(SixelEncoder.level(100) == 255)
        #expect(SixelEncoder.level(0) == 0)
        #expect(SixelEncoder.level(50) == 128)
    }

    @Test("nearest colour search agrees with brute force")
    func nearestColour() {
        var rng = SplitMix(seed: 7)
        func random(_ n: Int) -> [SIMD3<Float>] {
            (0..<n).map { _ in SIMD3<Float>(Float(rng.next() % 256), Float(rng.next() % 256), Float(rng.next() % 256)) }
        }
        // Random, tiny, and all on one grey line (the walk's axis then carries everything).
        let palettes = [random(200), random(1), random(2), (0..<40).map { SIMD3<Float>(repeating: Float($0 * 6)) }]
        for palette in palettes {
            var search = NearestColor(palette: palette)
            for _ in 0..<2000 {
                let q = SIMD3<Float>(Float(rng.next() % 2560) / 10, Float(rng.next() % 2560) / 10,
                                     Float(rng.next() % 2560) / 10)
                func distance(_ i: Int) -> Float { ((palette[i] - q) * (palette[i] - q)).sum() }
                let best = palette.indices.map(distance).min() ?? 0
                #expect(distance(search.nearest(q.x, q.y, q.z)) == best, "\(palette.count) colours, query \(q)")
                #expect(distance(search.nearestByWalk(q.x, q.y, q.z)) == best)
            }
        }
    }
}

/// Deterministic pseudo-random numbers for tests.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
