/// A picture quantised and dithered for sixel once, so that it can be drawn again, whole or any band of its rows,
/// without quantising again: a chat screen redraws a preview that moved, or only the rows of it still in view.
public struct SixelPicture: Sendable {
    public let width: Int
    /// Pixel rows of the picture itself.
    public let height: Int
    /// Rows of the raster: `height` plus transparent padding at the bottom.
    public let canvasHeight: Int
    /// Palette index per pixel (`SixelEncoder.transparent` for undrawn ones), row by row.
    let indices: [UInt16]
    /// Registers in whole percent, as sent.
    let palette: [SIMD3<Int>]
    let opaque: Bool

    /// The whole picture.
    public func sixel() -> [UInt8] {
        sixel(pixelRows: 0..<canvasHeight)
    }

    /// Rows `pixelRows` (clamped to the canvas) as a sixel image of their own, its top at the first of them; no
    /// bytes when none of them is on the canvas. A height that is not a multiple of 6 leaves the last band's lower
    /// bits unset, so nothing is drawn below it.
    public func sixel(pixelRows: Range<Int>) -> [UInt8] {
        let top = min(max(0, pixelRows.lowerBound), canvasHeight)
        let bottom = min(max(top, pixelRows.upperBound), canvasHeight)
        let canvas = bottom - top
        guard canvas > 0 else { return [] }
        let drawn = max(0, min(bottom, height) - top)
        let slice = drawn > 0 ? Array(indices[(top * width)..<((top + drawn) * width)]) : []
        let undrawn = canvas > drawn || !opaque
        var sink = ByteSink(capacity: width * max(1, drawn) + 8192)
        sink.append(0x1B)
        sink.append(undrawn ? "P0;1q\"1;1;" : "Pq\"1;1;")
        sink.appendDecimal(width)
        sink.append(0x3B)
        sink.appendDecimal(canvas)
        SixelBands.emit(indices: slice, width: width, height: drawn, canvasHeight: canvas, percentPalette: palette,
                        into: &sink)
        sink.append(0x1B)
        sink.append(0x5C)
        return sink.finish()
    }
}
