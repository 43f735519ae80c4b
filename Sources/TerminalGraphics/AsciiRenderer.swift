import ImageBuffer

/// Plain ASCII for terminals without colour (`NO_COLOR`, `TERM=dumb`): one character per pixel, from a ramp of
/// increasing ink. No escape sequences at all.
public struct AsciiRenderer: Sendable {
    /// Light to dark ink: for a dark background the first character is the darkest pixel.
    public static let defaultRamp: [UInt8] = Array(" .:-=+*#%@".utf8)

    public var ramp: [UInt8]
    /// Set for dark text on a light background: dark pixels then get the most ink.
    public var invert: Bool

    public init(ramp: [UInt8] = AsciiRenderer.defaultRamp, invert: Bool = false) {
        self.ramp = ramp.isEmpty ? AsciiRenderer.defaultRamp : ramp
        self.invert = invert
    }

    /// One line per pixel row, without line terminators. Transparent pixels count as black (blank).
    public func render(_ image: RGBAImage) -> [[UInt8]] {
        let levels = ramp.count
        var lines: [[UInt8]] = []
        lines.reserveCapacity(image.height)
        for y in 0..<image.height {
            var line = [UInt8](repeating: 0x20, count: image.width)
            for x in 0..<image.width {
                let i = (y * image.width + x) * 4
                let a = Int(image.pixels[i + 3])
                // Rec. 709 luma, weighted by alpha (over black), 0...255.
                let luma = (2126 * Int(image.pixels[i]) + 7152 * Int(image.pixels[i + 1]) +
                            722 * Int(image.pixels[i + 2])) * a / (10000 * 255)
                let ink = invert ? 255 - luma : luma
                line[x] = ramp[min(levels - 1, ink * levels / 256)]
            }
            lines.append(line)
        }
        return lines
    }
}
