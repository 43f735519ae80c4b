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
}

/// The colours half-block previews may use in a 256-colour terminal, with what each index shows: the 240 above the
/// first 16 as xterm defines them, and any of the first 16 that the terminal reported (OSC 4). Those 16 differ with
/// every theme, so they are used only when the terminal said what they are.
public struct TerminalPalette: Sendable, Hashable {
    public let indices: [UInt8]
    public let colors: [RGB]

    /// `reported`: palette index → the colour the terminal reported for it.
    public init(reported: [Int: RGB] = [:]) {
        var indices: [UInt8] = []
        var colors: [RGB] = []
        for index in 0..<256 {
            if let color = reported[index] {
                indices.append(UInt8(index))
                colors.append(color)
            } else if index >= 16 {
                indices.append(UInt8(index))
                colors.append(Ansi256.color(of: UInt8(index)))
            }
        }
        self.indices = indices
        self.colors = colors
    }

    /// The index whose colour is nearest to `color` (squared RGB distance).
    public func nearest(_ color: RGB) -> UInt8 {
        var best = 0
        var bestDistance = Int.max
        for (i, p) in colors.enumerated() {
            let dr = Int(p.r) - Int(color.r), dg = Int(p.g) - Int(color.g), db = Int(p.b) - Int(color.b)
            let d = dr * dr + dg * dg + db * db
            if d < bestDistance {
                best = i
                bestDistance = d
            }
        }
        return indices[best]
    }
}
