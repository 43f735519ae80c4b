/// An 8-bit sRGB colour.
public struct RGB: Sendable, Hashable {
    public var r: UInt8
    public var g: UInt8
    public var b: UInt8

    public init(_ r: UInt8, _ g: UInt8, _ b: UInt8) {
        self.r = r
        self.g = g
        self.b = b
    }

    public static let black = RGB(0, 0, 0)
    public static let white = RGB(255, 255, 255)
}

/// The xterm 256-colour palette above the 16 system colours: the 6x6x6 cube (16...231) and 24 greys (232...255).
/// The first 16 are left alone because terminals and themes redefine them.
public enum Ansi256 {
    static let cubeLevels: [Int] = [0, 95, 135, 175, 215, 255]

    /// Nearest cube level index for each 8-bit value (levels are not evenly spaced, so midpoints decide).
    private static let cubeIndex: [UInt8] = (0..<256).map { v in
        var best = 0
        for i in 1..<6 where abs(cubeLevels[i] - v) < abs(cubeLevels[best] - v) { best = i }
        return UInt8(best)
    }

    /// The colour of a palette index in 16...255 (other indices: black).
    public static func color(of index: UInt8) -> RGB {
        switch index {
        case 16...231:
            let i = Int(index) - 16
            return RGB(UInt8(cubeLevels[i / 36]), UInt8(cubeLevels[(i / 6) % 6]), UInt8(cubeLevels[i % 6]))
        case 232...255:
            let v = UInt8(8 + 10 * (Int(index) - 232))
            return RGB(v, v, v)
        default:
            return .black
        }
    }

    /// The index in 16...255 nearest to `color` (squared RGB distance). The cube is separable, so its nearest
    /// point is per channel; the nearest grey is the one nearest the mean.
    public static func nearest(_ color: RGB) -> UInt8 {
        let r = Int(color.r), g = Int(color.g), b = Int(color.b)
        let ri = Int(cubeIndex[r]), gi = Int(cubeIndex[g]), bi = Int(cubeIndex[b])
        let cr = cubeLevels[ri] - r, cg = cubeLevels[gi] - g, cb = cubeLevels[bi] - b
        let cubeDistance = cr * cr + cg * cg + cb * cb
        // Grey i is 8 + 10i; the best i is next to (sum/3 - 8) / 10, so look at its neighbours.
        let guess = min(23, max(0, ((r + g + b) - 24 + 15) / 30))
        var greyIndex = 0
        var greyDistance = Int.max
        for i in max(0, guess - 1)...min(23, guess + 1) {
            let v = 8 + 10 * i
            let d = (v - r) * (v - r) + (v - g) * (v - g) + (v - b) * (v - b)
            if d < greyDistance {
                greyDistance = d
                greyIndex = i
            }
        }
        if greyDistance < cubeDistance { return UInt8(232 + greyIndex) }
        return UInt8(16 + 36 * ri + 6 * gi + bi)
    }
}
