import CImageCodecs
import ImageBuffer

/// Input bytes, either borrowed from the caller or owned (read from a file). Owned bytes can be freed as soon as
/// they are no longer needed, which keeps peak memory down on the progressive-JPEG path.
final class InputBytes {
    private(set) var bytes: UnsafeRawBufferPointer
    private var owned: UnsafeMutableRawPointer?

    init(borrowing bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    init(owning pointer: UnsafeMutableRawPointer, count: Int) {
        owned = pointer
        bytes = UnsafeRawBufferPointer(start: pointer, count: count)
    }

    /// Frees owned bytes; `bytes` is empty afterwards. No effect on borrowed bytes.
    func releaseIfOwned() {
        guard let owned else { return }
        owned.deallocate()
        self.owned = nil
        bytes = UnsafeRawBufferPointer(start: nil, count: 0)
    }

    deinit { owned?.deallocate() }
}

/// Size and orientation of an image being decoded.
struct Geometry {
    let format: ImageFormat
    /// Full-resolution size in stored orientation (before EXIF orientation).
    let fullWidth: Int
    let fullHeight: Int
    /// Decoded size: the full size, or less for a JPEG decoded at n/8 scale.
    let width: Int
    let height: Int
    /// Decoded size / full size (n/8 for a scaled JPEG decode, 1 otherwise).
    let scale: Double
    let orientation: Int
}

/// A whole decoded image in stored orientation, possibly at a reduced (JPEG n/8) scale.
struct Decoded {
    var image: RGBAImage
    let geometry: Geometry
    let opaque: Bool
    let partial: Bool
}

/// The decoded image must have a longest side of at least `minLong` and a shortest side of at least `minShort`
/// (orientation does not matter: both are symmetric).
struct DecodeNeed {
    var minLong: Int
    var minShort: Int
}

enum Codec {
    static func message(_ st: ic_status) -> String {
        withUnsafeBytes(of: st.message) { raw in String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self) }
    }

    static func checkSize(width: Int, height: Int, format: ImageFormat,
                          limits: ThumbnailerLimits) throws(ThumbnailError) {
        guard width > 0, height > 0 else { throw .corrupt(format: format, detail: "image has zero width or height") }
        let (pixels, overflow) = width.multipliedReportingOverflow(by: height)
        if overflow || pixels > limits.maxPixels {
            throw .tooManyPixels(width: width, height: height, limit: limits.maxPixels)
        }
        if max(width, height) > limits.maxDimension {
            throw .dimensionTooLarge(width: width, height: height, limit: limits.maxDimension)
        }
    }

    static func error(_ st: ic_status, format: ImageFormat) -> ThumbnailError {
        let detail = message(st)
        switch st.code {
        case IC_ERR_UNSUPPORTED: return .unsupportedFeature(format: format, detail: detail)
        case IC_ERR_TRUNCATED: return .truncated(format: format, detail: detail)
        case IC_ERR_LIMIT: return .resourceLimit(format: format, detail: detail)
        case IC_ERR_NOMEM: return .outOfMemory
        default: return .corrupt(format: format, detail: detail)
        }
    }

    /// A new pixel array of `count` bytes, all written by `fill` (nothing is zeroed first), or `fill`'s error.
    static func pixels(count: Int,
                       _ fill: (UnsafeMutablePointer<UInt8>) throws(ThumbnailError) -> Void) throws(ThumbnailError) -> [UInt8] {
        var failure: ThumbnailError?
        let pixels = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            guard let base = buffer.baseAddress else { return }
            do throws(ThumbnailError) {
                try fill(base)
                initialized = count
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
        return pixels
    }
}

// MARK: JPEG

enum JPEGCodec {
    private static func cLimits(_ limits: ThumbnailerLimits) -> ic_jpeg_limits {
        ic_jpeg_limits(max_memory: UInt64(max(0, limits.maxDecoderMemory)),
                       max_scans: Int32(clamping: limits.maxJPEGScans), max_warnings: 1000)
    }

    static func open(_ bytes: UnsafeRawBufferPointer,
                     limits: ThumbnailerLimits) throws(ThumbnailError) -> (OpaquePointer, ic_jpeg_info) {
        var info = ic_jpeg_info()
        var st = ic_status()
        var cl = cLimits(limits)
        guard let base = bytes.baseAddress,
              let dec = ic_jpeg_open(base.assumingMemoryBound(to: UInt8.self), bytes.count, &cl, &info, &st) else {
            if st.code == IC_ERR_UNSUPPORTED, info.precision != 0, info.precision != 8 {
                throw .unsupportedJPEGPrecision(bits: Int(info.precision))
            }
            if bytes.isEmpty { throw .emptyInput }
            throw Codec.error(st, format: .jpeg)
        }
        return (dec, info)
    }

    static func orientation(_ info: ic_jpeg_info) -> Int {
        guard let exif = info.exif else { return 1 }
        return Exif.orientation(tiff: UnsafeRawBufferPointer(start: exif, count: info.exif_size))
    }

    static func probe(_ bytes: UnsafeRawBufferPointer, limits: ThumbnailerLimits) throws(ThumbnailError) -> ImageInfo {
        let (dec, info) = try open(bytes, limits: limits)
        defer { ic_jpeg_close(dec) }
        let o = orientation(info)
        let w = Int(info.width), h = Int(info.height)
        try Codec.checkSize(width: w, height: h, format: .jpeg, limits: limits)
        let swap = Orientation.swapsAxes(o)
        return ImageInfo(width: swap ? h : w, height: swap ? w : h, format: .jpeg, orientation: o, mayHaveAlpha: false)
    }

    /// The smallest n/8 whose output still meets `need` (never above 8/8: no upscaling in the decoder).
    static func scale(width: Int, height: Int, need: DecodeNeed?) -> Int {
        guard let need else { return 8 }
        for n in 1...8 {
            let w = (width * n + 7) / 8, h = (height * n + 7) / 8
            if max(w, h) >= need.minLong && min(w, h) >= need.minShort { return n }
        }
        return 8
    }

    /// The whole image at the scale `target` needs.
    static func decode(_ input: InputBytes, target: DecodeTarget, limits: ThumbnailerLimits) throws(ThumbnailError) -> Decoded {
        let decoder = try JPEGRowDecoder(input, target: target, limits: limits)
        let image = try decoder.readImage()
        return Decoded(image: image, geometry: decoder.geometry, opaque: true, partial: decoder.isPartial)
    }

    static func encode(_ image: RGBAImage, quality: Int) throws(ThumbnailError) -> [UInt8] {
        var out: UnsafeMutablePointer<UInt8>?
        var size = 0
        var st = ic_status()
        let code = image.pixels.withUnsafeBufferPointer {
            ic_jpeg_encode_rgba($0.baseAddress, Int32(image.width), Int32(image.height), Int32(quality), 1,
                                &out, &size, &st)
        }
        defer { ic_free(out) }
        guard code == IC_OK, let out else { throw .encodingFailed(format: .jpeg, detail: Codec.message(st)) }
        return [UInt8](UnsafeBufferPointer(start: out, count: size))
    }
}

/// A JPEG decoded row by row at the smallest n/8 scale a target allows, for the resamplers to take strip by strip
/// without the decoded image ever being whole in memory. Not shared between threads.
final class JPEGRowDecoder {
    let geometry: Geometry
    private(set) var rowsRead = 0
    private var decoder: OpaquePointer?
    private var input: InputBytes?              // the bytes libjpeg reads from, kept alive while it does
    private var stream: UnsafeMutablePointer<UInt8>? // DC-only stream of a progressive file at 1/8 (ic_free)

    init(_ input: InputBytes, target: DecodeTarget, limits: ThumbnailerLimits) throws(ThumbnailError) {
        let (dec, info) = try JPEGCodec.open(input.bytes, limits: limits)
        decoder = dec
        self.input = input
        let fullW = Int(info.width), fullH = Int(info.height)
        let orientation = JPEGCodec.orientation(info) // exif points into the decoder: read it before closing
        var n = 8
        var smoothing: Int32 = 1
        do throws(ThumbnailError) {
            try Codec.checkSize(width: fullW, height: fullH, format: .jpeg, limits: limits)
            n = JPEGCodec.scale(width: fullW, height: fullH, need: target.need(width: fullW, height: fullH))
            // At 1/8 only DC coefficients matter for components decoded with a 1x1 IDCT: decode a stream without
            // their AC scans (most of a progressive file). Block smoothing must be off: it would invent the missing
            // AC coefficients from DC neighbours, and the whole file would not have smoothed.
            if n == 1, info.progressive != 0, info.arithmetic == 0, let base = input.bytes.baseAddress {
                var size = 0
                if let dcOnly = ic_jpeg_dc_only_stream(dec, base.assumingMemoryBound(to: UInt8.self), input.bytes.count, &size) {
                    stream = dcOnly
                    ic_jpeg_close(dec)
                    decoder = nil
                    input.releaseIfOwned() // the file's bytes are no longer needed: free them before libjpeg allocates
                    self.input = nil
                    decoder = try JPEGCodec.open(UnsafeRawBufferPointer(start: dcOnly, count: size), limits: limits).0
                    smoothing = 0
                }
            }
        } catch {
            Self.release(decoder, stream)
            throw error
        }
        var st = ic_status()
        var ow: Int32 = 0, oh: Int32 = 0
        guard ic_jpeg_start(decoder, Int32(n), smoothing, &ow, &oh, &st) == IC_OK, ow > 0, oh > 0 else {
            Self.release(decoder, stream)
            throw st.code == IC_OK ? .corrupt(format: .jpeg, detail: "decoder produced no pixels")
                                   : Codec.error(st, format: .jpeg)
        }
        geometry = Geometry(format: .jpeg, fullWidth: fullW, fullHeight: fullH, width: Int(ow), height: Int(oh),
                            scale: Double(n) / 8, orientation: orientation)
    }

    deinit { Self.release(decoder, stream) }

    private static func release(_ decoder: OpaquePointer?, _ stream: UnsafeMutablePointer<UInt8>?) {
        if let decoder { ic_jpeg_close(decoder) }
        ic_free(stream)
    }

    /// True once every row is read.
    var isComplete: Bool { rowsRead == geometry.height }

    /// True when data was missing or damaged (missing parts are grey).
    var isPartial: Bool { ic_jpeg_damaged(decoder) != 0 }

    /// Decodes the next rows, at most `maxRows` of `geometry.width * 4` bytes, into `buffer`; returns how many
    /// (0 once all are read).
    func read(into buffer: UnsafeMutablePointer<UInt8>, maxRows: Int) throws(ThumbnailError) -> Int {
        guard !isComplete else { return 0 }
        var st = ic_status()
        var rows: Int32 = 0
        guard ic_jpeg_read_rows(decoder, buffer, Int32(clamping: maxRows), &rows, &st) == IC_OK else {
            throw Codec.error(st, format: .jpeg)
        }
        guard rows > 0 else { throw .corrupt(format: .jpeg, detail: "decoder stopped after \(rowsRead) rows") }
        rowsRead += Int(rows)
        if isComplete { // libjpeg is done with the bytes: free them (when read from a file) before the encode
            input?.releaseIfOwned()
            input = nil
        }
        return Int(rows)
    }

    /// The whole image, on a decoder no rows have been read from.
    func readImage() throws(ThumbnailError) -> RGBAImage {
        precondition(rowsRead == 0, "readImage after read(into:maxRows:)")
        let rowBytes = geometry.width * 4
        let pixels = try Codec.pixels(count: rowBytes * geometry.height) { (base) throws(ThumbnailError) in
            while !isComplete { _ = try read(into: base + rowsRead * rowBytes, maxRows: geometry.height - rowsRead) }
        }
        guard let image = RGBAImage(width: geometry.width, height: geometry.height, pixels: pixels) else {
            throw .corrupt(format: .jpeg, detail: "decoder produced no pixels")
        }
        return image
    }
}

// MARK: PNG

enum PNGCodec {
    private static func open(_ bytes: UnsafeRawBufferPointer,
                             limits: ThumbnailerLimits) throws(ThumbnailError) -> (OpaquePointer, ic_png_info) {
        var info = ic_png_info()
        var st = ic_status()
        var cl = ic_png_limits(max_width: UInt32(clamping: limits.maxDimension),
                               max_height: UInt32(clamping: limits.maxDimension),
                               max_pixels: UInt64(max(0, limits.maxPixels)),
                               max_chunk_bytes: 8 << 20, // text/ICC/unknown chunks; image data is streamed
                               max_chunks: 1000)
        guard let base = bytes.baseAddress,
              let dec = ic_png_open(base.assumingMemoryBound(to: UInt8.self), bytes.count, &cl, &info, &st) else {
            if st.code == IC_ERR_LIMIT {
                // The IHDR peek refused the size: report which limit.
                try Codec.checkSize(width: Int(info.width), height: Int(info.height), format: .png, limits: limits)
            }
            if bytes.isEmpty { throw .emptyInput }
            throw Codec.error(st, format: .png)
        }
        return (dec, info)
    }

    static func probe(_ bytes: UnsafeRawBufferPointer, limits: ThumbnailerLimits) throws(ThumbnailError) -> ImageInfo {
        let (dec, info) = try open(bytes, limits: limits)
        defer { ic_png_close(dec) }
        let w = Int(info.width), h = Int(info.height)
        try Codec.checkSize(width: w, height: h, format: .png, limits: limits)
        return ImageInfo(width: w, height: h, format: .png, orientation: 1, mayHaveAlpha: info.has_alpha != 0)
    }

    static func decode(_ input: InputBytes, limits: ThumbnailerLimits) throws(ThumbnailError) -> Decoded {
        let (dec, info) = try open(input.bytes, limits: limits)
        defer { ic_png_close(dec) }
        let w = Int(info.width), h = Int(info.height)
        try Codec.checkSize(width: w, height: h, format: .png, limits: limits)
        let count = w * h * 4
        var st = ic_status()
        var partial: Int32 = 0
        let pixels = try Codec.pixels(count: count) { (base) throws(ThumbnailError) in
            guard ic_png_read_rgba(dec, base, count, &partial, &st) == IC_OK else { throw Codec.error(st, format: .png) }
        }
        guard let image = RGBAImage(width: w, height: h, pixels: pixels) else {
            throw .corrupt(format: .png, detail: "decoder produced no pixels")
        }
        return Decoded(image: image,
                       geometry: Geometry(format: .png, fullWidth: w, fullHeight: h, width: w, height: h, scale: 1,
                                          orientation: 1),
                       opaque: info.has_alpha == 0 || image.isOpaque, partial: partial != 0)
    }

    static func encode(_ image: RGBAImage, compressionLevel: Int) throws(ThumbnailError) -> [UInt8] {
        var out: UnsafeMutablePointer<UInt8>?
        var size = 0
        var st = ic_status()
        let code = image.pixels.withUnsafeBufferPointer {
            ic_png_encode_rgba($0.baseAddress, Int32(image.width), Int32(image.height), Int32(compressionLevel),
                               &out, &size, &st)
        }
        defer { ic_free(out) }
        guard code == IC_OK, let out else { throw .encodingFailed(format: .png, detail: Codec.message(st)) }
        return [UInt8](UnsafeBufferPointer(start: out, count: size))
    }
}
