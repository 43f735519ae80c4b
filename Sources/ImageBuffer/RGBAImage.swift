/// An 8-bit RGBA image, row by row, not premultiplied.
///
/// The one pixel type shared by the thumbnailer (which produces it) and the terminal renderers (which draw it),
/// so neither depends on the other.
public struct RGBAImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// `width * height * 4` bytes: r, g, b, a for each pixel, rows top to bottom.
    public var pixels: [UInt8]

    /// Returns nil when the dimensions are not positive or `pixels` has the wrong length.
    public init?(width: Int, height: Int, pixels: [UInt8]) {
        guard width > 0, height > 0, width.multipliedReportingOverflow(by: height).overflow == false,
              pixels.count == width * height * 4 else { return nil }
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// A fully transparent black image. Precondition: positive dimensions (programmer input, not client input).
    public init(width: Int, height: Int) {
        precondition(width > 0 && height > 0, "RGBAImage needs positive dimensions")
        self.width = width
        self.height = height
        self.pixels = [UInt8](repeating: 0, count: width * height * 4)
    }

    /// True when every pixel has alpha 255.
    public var isOpaque: Bool {
        var i = 3
        while i < pixels.count {
            if pixels[i] != 255 { return false }
            i += 4
        }
        return true
    }
}
