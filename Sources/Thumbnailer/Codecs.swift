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

/// A decoded image in stored orientation, possibly at a reduced (JPEG n/8) scale.
struct Decoded {
    var image: RGBAImage
    let format: ImageFormat
    /// Full-resolution size in stored orientation (before EXIF orientation).
    let fullWidth: Int
    let fullHeight: Int
    /// Decoded size / full size (n/8 for a scaled JPEG decode, 1 otherwise).
    let scale: Double
    let orientation: Int
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

    /// Fills a new pixel array with `fill`, which returns the C status code.
    static func pixels(count: Int, _ fill: (UnsafeMutablePointer<UInt8>?) -> ic_code) -> [UInt8]? {
        var ok = false
        let pixels = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            ok = fill(buffer.baseAddress) == IC_OK
            initialized = ok ? count : 0
        }
        return ok ? pixels : nil
    }
}

// MARK: JPEG

enum JPEGCodec {
    private static func cLimits(_ limits: ThumbnailerLimits) -> ic_jpeg_limits {
        ic_jpeg_limits(max_memory: UInt64(max(0, limits.maxDecoderMemory)),
                       max_scans: Int32(clamping: limits.maxJPEGScans), max_warnings: 1000)
    }

    private static func open(_ bytes: UnsafeRawBufferPointer,
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

    private static func orientation(_ info: ic_jpeg_info) -> Int {
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

    static func decode(_ input: InputBytes, target: DecodeTarget, limits: ThumbnailerLimits) throws(ThumbnailError) -> Decoded {
        let (dec, info) = try open(input.bytes, limits: limits)
        var decoder: OpaquePointer? = dec
        defer { if let decoder { ic_jpeg_close(decoder) } }
        let fullW = Int(info.width), fullH = Int(info.height)
        try Codec.checkSize(width: fullW, height: fullH, format: .jpeg, limits: limits)
        let orientation = orientation(info) // exif points into the decoder: read it before closing
        let n = scale(width: fullW, height: fullH, need: target.need(width: fullW, height: fullH))
        var ow: Int32 = 0, oh: Int32 = 0
        ic_jpeg_scaled_size(dec, Int32(n), &ow, &oh)

        // At 1/8 only DC coefficients matter for components decoded with a 1x1 IDCT: decode a stream without their
        // AC scans (most of a progressive file). Block smoothing must be off: it would invent the missing AC
        // coefficients from DC neighbours, and the whole file would not have smoothed.
        if n == 1, info.progressive != 0, info.arithmetic == 0, let base = input.bytes.baseAddress {
            var size = 0
            if let stream = ic_jpeg_dc_only_stream(dec, base.assumingMemoryBound(to: UInt8.self), input.bytes.count, &size) {
                defer { ic_free(stream) }
                ic_jpeg_close(dec)
                decoder = nil
                input.releaseIfOwned() // the file's bytes are no longer needed: free them before libjpeg allocates
                let (dcDec, _) = try open(UnsafeRawBufferPointer(start: stream, count: size), limits: limits)
                defer { ic_jpeg_close(dcDec) }
                let (image, partial) = try read(dcDec, scale: 1, smoothing: false, width: Int(ow), height: Int(oh))
                return Decoded(image: image, format: .jpeg, fullWidth: fullW, fullHeight: fullH, scale: 1.0 / 8,
                               orientation: orientation, opaque: true, partial: partial)
            }
        }
        let (image, partial) = try read(dec, scale: n, smoothing: true, width: Int(ow), height: Int(oh))
        return Decoded(image: image, format: .jpeg, fullWidth: fullW, fullHeight: fullH, scale: Double(n) / 8,
                       orientation: orientation, opaque: true, partial: partial)
    }

    private static func read(_ dec: OpaquePointer, scale: Int, smoothing: Bool,
                             width: Int, height: Int) throws(ThumbnailError) -> (RGBAImage, Bool) {
        let count = width * height * 4
        var st = ic_status()
        var partial: Int32 = 0
        guard let pixels = Codec.pixels(count: count, {
            ic_jpeg_read_rgba(dec, Int32(scale), smoothing ? 1 : 0, $0, count, &partial, &st)
        }) else { throw Codec.error(st, format: .jpeg) }
        guard let image = RGBAImage(width: width, height: height, pixels: pixels) else {
            throw .corrupt(format: .jpeg, detail: "decoder produced no pixels")
        }
        return (image, partial != 0)
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
        guard let pixels = Codec.pixels(count: count, { ic_png_read_rgba(dec, $0, count, &partial, &st) }) else {
            throw Codec.error(st, format: .png)
        }
        guard let image = RGBAImage(width: w, height: h, pixels: pixels) else {
            throw .corrupt(format: .png, detail: "decoder produced no pixels")
        }
        return Decoded(image: image, format: .png, fullWidth: w, fullHeight: h, scale: 1, orientation: 1,
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
