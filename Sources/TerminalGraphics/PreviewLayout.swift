/// Where a preview goes, decided before drawing (so the caller can reserve the space while the thumbnail
/// downloads): the cells it covers and the pixel size to resample the image to.
public struct PreviewLayout: Sendable, Hashable {
    /// Cells covered: the caller reserves `rows` lines, `columns` wide.
    public var columns: Int
    public var rows: Int
    /// The size to resample the image to (sixel: pixels; blocks: one per column, two per row; ASCII: one per cell).
    public var pixelWidth: Int
    public var pixelHeight: Int
    /// Sixel only: the raster height, `pixelHeight` padded with transparent rows so the picture covers its rows
    /// exactly, kept to a multiple of 6 (a sixel band) that does not reach into the row below. Equals
    /// `pixelHeight` for other modes.
    public var canvasHeight: Int

    public init(columns: Int, rows: Int, pixelWidth: Int, pixelHeight: Int, canvasHeight: Int) {
        self.columns = columns
        self.rows = rows
        self.pixelWidth = pixelWidth
        self.pixelHeight = pixelHeight
        self.canvasHeight = canvasHeight
    }

    /// At most this share of the terminal's rows.
    public static let heightShare = 3

    /// Layout for drawing an `imageWidth` x `imageHeight` picture in `mode`; nil for `.none` or an empty image.
    /// Keeps the aspect ratio (on screen, taking the cell shape into account), uses at most `maxColumns` (and the
    /// terminal's width) and about a third of the terminal's height, and never enlarges the picture.
    public static func make(imageWidth: Int, imageHeight: Int, mode: ResolvedGraphics,
                            capabilities caps: TerminalCapabilities, maxColumns: Int) -> PreviewLayout? {
        guard imageWidth > 0, imageHeight > 0 else { return nil }
        let columns = max(1, min(maxColumns, caps.columns))
        let rows = max(1, caps.rows / heightShare)
        let cw = max(1, caps.cellWidth), ch = max(1, caps.cellHeight)
        switch mode {
        case .none:
            return nil
        case .sixel:
            return sixel(imageWidth: imageWidth, imageHeight: imageHeight, cellWidth: cw, cellHeight: ch,
                         maxColumns: columns, maxRows: rows)
        case .blocks:
            return cells(imageWidth: imageWidth, imageHeight: imageHeight, cellWidth: cw, cellHeight: ch,
                         maxColumns: columns, maxRows: rows, pixelsPerRow: 2)
        case .ascii:
            return cells(imageWidth: imageWidth, imageHeight: imageHeight, cellWidth: cw, cellHeight: ch,
                         maxColumns: columns, maxRows: rows, pixelsPerRow: 1)
        }
    }

    /// Pixels at the terminal's resolution: the picture is scaled (down only) to fit `maxColumns` x `maxRows`
    /// cells, its rows are counted, and the raster is padded to the last whole band within them (or the picture
    /// shrunk by a few pixels to such a band, when it ends in the last 1-5 pixel rows of a cell row).
    public static func sixel(imageWidth: Int, imageHeight: Int, cellWidth cw: Int, cellHeight ch: Int,
                             maxColumns: Int, maxRows: Int) -> PreviewLayout {
        let maxWidth = max(1, maxColumns * cw)
        // Whole bands only: a terminal that draws the last band in full must not touch the row below.
        let maxHeight = max(1, bandFloor(maxRows * ch))
        let scale = min(1, Double(maxWidth) / Double(imageWidth), Double(maxHeight) / Double(imageHeight))
        var width = min(maxWidth, max(1, Int((Double(imageWidth) * scale).rounded())))
        var height = min(maxHeight, max(1, Int((Double(imageHeight) * scale).rounded())))
        let rows = max(1, (height + ch - 1) / ch)
        let fit = bandFloor(rows * ch)
        if fit < height {
            // The last band would reach into the next row: shrink by those few pixels rather than add a row.
            width = max(1, Int((Double(width) * Double(fit) / Double(height)).rounded()))
            height = fit
        }
        let canvas = max(height, fit)
        return PreviewLayout(columns: max(1, (width + cw - 1) / cw), rows: rows, pixelWidth: width,
                             pixelHeight: height, canvasHeight: canvas)
    }

    /// Text cells showing `pixelsPerRow` pixels each vertically (half blocks: 2, ASCII: 1) and one horizontally.
    /// On screen a cell is `cw` x `ch` pixels, so the rows for a given width follow from the picture's and the
    /// cell's aspect ratios.
    public static func cells(imageWidth: Int, imageHeight: Int, cellWidth cw: Int, cellHeight ch: Int,
                             maxColumns: Int, maxRows: Int, pixelsPerRow: Int) -> PreviewLayout {
        // rows / columns on screen = (imageHeight / imageWidth) * (cw / ch)
        let ratio = Double(imageHeight) * Double(cw) / (Double(imageWidth) * Double(ch))
        // Never more cell pixels than image pixels.
        let columnLimit = min(maxColumns, imageWidth)
        let rowLimit = min(maxRows, max(1, imageHeight / pixelsPerRow))
        var columns = columnLimit
        var rows = max(1, Int((Double(columns) * ratio).rounded()))
        if rows > rowLimit {
            rows = rowLimit
            columns = min(columnLimit, max(1, Int((Double(rows) / ratio).rounded())))
        }
        return PreviewLayout(columns: columns, rows: rows, pixelWidth: columns, pixelHeight: rows * pixelsPerRow,
                             canvasHeight: rows * pixelsPerRow)
    }

    /// The largest multiple of 6 not above `n` (n itself when below 6).
    static func bandFloor(_ n: Int) -> Int {
        n < 6 ? n : n / 6 * 6
    }
}
