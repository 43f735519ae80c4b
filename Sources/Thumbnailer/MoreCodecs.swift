// GIF (giflib), WebP (libwebp) and HEIF (libheif) behind the same open / check limits / decode steps as JPEG and PNG.
import CImageCodecs
import ImageBuffer

extension Geometry {
    /// An image decoded whole at its full size, upright as stored.
    static func whole(_ format: ImageFormat, width: Int, height: Int) -> Geometry {
        Geometry(format: format, fullWidth: width, fullHeight: height, width: width, height: height, scale: 1,
                 orientation: 1)
    }
}

// MARK: GIF

/// The first frame of a GIF (giflib), on its canvas. Frames are counted by `probe` only, without decoding them.
enum GIFCodec {
    private static func open(_ bytes: UnsafeRawBufferPointer) throws(ThumbnailError) -> (OpaquePointer, ic_gif_info) {
        var info = ic_gif_info()
        var st = ic_status()
        guard let base = bytes.baseAddress,
              let dec = ic_gif_open(base.assumingMemoryBound(to: UInt8.self), bytes.count, &info, &st) else {
            if bytes.isEmpty { throw .emptyInput }
            throw Codec.error(st, format: .gif)
        }
        return (dec, info)
    }

    static func probe(_ bytes: UnsafeRawBufferPointer, limits: ThumbnailerLimits) throws(ThumbnailError) -> ImageInfo {
        let (dec, info) = try open(bytes)
        ic_gif_close(dec)
        let w = Int(info.width), h = Int(info.height)
        try Codec.checkSize(width: w, height: h, format: .gif, limits: limits)
        var frames: Int32 = 0, complete: Int32 = 0
        var st = ic_status()
        // open read the first frame's descriptor from the same bytes, so counting cannot fail before it.
        if let base = bytes.baseAddress {
            _ = ic_gif_count_frames(base.assumingMemoryBound(to: UInt8.self), bytes.count,
                                    Int32(clamping: limits.maxFrames), &frames, &complete, &st)
        }
        return ImageInfo(width: w, height: h, format: .gif, orientation: 1, mayHaveAlpha: info.may_have_alpha != 0,
                         frameCount: max(1, Int(frames)), frameCountIsLowerBound: complete == 0)
    }

    static func decode(_ input: InputBytes, limits: ThumbnailerLimits) throws(ThumbnailError) -> Decoded {
        let (dec, info) = try open(input.bytes)
        defer { ic_gif_close(dec) }
        let w = Int(info.width), h = Int(info.height)
        try Codec.checkSize(width: w, height: h, format: .gif, limits: limits)
        let count = w * h * 4
        var st = ic_status()
        var partial: Int32 = 0
        let pixels = try Codec.pixels(count: count) { (base) throws(ThumbnailError) in
            guard ic_gif_read_rgba(dec, base, count, &partial, &st) == IC_OK else { throw Codec.error(st, format: .gif) }
        }
        guard let image = RGBAImage(width: w, height: h, pixels: pixels) else {
            throw .corrupt(format: .gif, detail: "decoder produced no pixels")
        }
        return Decoded(image: image, geometry: .whole(.gif, width: w, height: h),
                       opaque: info.may_have_alpha == 0 || image.isOpaque, partial: partial != 0)
    }
}

// MARK: WebP

/// A still WebP (scaled by libwebp while it decodes, when the target allows) or an animation's first frame on its
/// canvas (libwebp, libwebpdemux).
enum WebPCodec {
    private static func open(_ bytes: UnsafeRawBufferPointer,
                             limits: ThumbnailerLimits) throws(ThumbnailError) -> (OpaquePointer, ic_webp_info) {
        var info = ic_webp_info()
        var st = ic_status()
        guard let base = bytes.baseAddress,
              let dec = ic_webp_open(base.assumingMemoryBound(to: UInt8.self), bytes.count,
                                     Int32(clamping: limits.maxFrames), &info, &st) else {
            if bytes.isEmpty { throw .emptyInput }
            throw Codec.error(st, format: .webp)
        }
        return (dec, info)
    }

    static func probe(_ bytes: UnsafeRawBufferPointer, limits: ThumbnailerLimits) throws(ThumbnailError) -> ImageInfo {
        let (dec, info) = try open(bytes, limits: limits)
        ic_webp_close(dec)
        let w = Int(info.width), h = Int(info.height)
        try Codec.checkSize(width: w, height: h, format: .webp, limits: limits)
        return ImageInfo(width: w, height: h, format: .webp, orientation: 1,
                         mayHaveAlpha: info.has_alpha != 0 || info.animated != 0,
                         frameCount: max(1, Int(info.frames)), frameCountIsLowerBound: info.frames_complete == 0)
    }

    /// The smallest size, aspect kept, whose sides still meet `need` (the full size when only that does).
    static func scaledSize(width: Int, height: Int, need: DecodeNeed?) -> (Int, Int) {
        guard let need else { return (width, height) }
        let long = max(width, height), short = min(width, height)
        let factor = max(Double(need.minLong) / Double(long), Double(need.minShort) / Double(short))
        guard factor < 1 else { return (width, height) }
        let w = min(width, max(1, Int((Double(width) * factor).rounded(.up))))
        let h = min(height, max(1, Int((Double(height) * factor).rounded(.up))))
        return (w, h)
    }

    static func decode(_ input: InputBytes, target: DecodeTarget,
                       limits: ThumbnailerLimits) throws(ThumbnailError) -> Decoded {
        let (dec, info) = try open(input.bytes, limits: limits)
        defer { ic_webp_close(dec) }
        let w = Int(info.width), h = Int(info.height)
        try Codec.checkSize(width: w, height: h, format: .webp, limits: limits)
        // A still image is scaled by libwebp to twice the target while it decodes (as a JPEG is at n/8), so the
        // full-size pixels are never whole; an animation's first frame is drawn on its canvas at full size.
        let (ow, oh) = info.animated != 0 ? (w, h) : scaledSize(width: w, height: h, need: target.need(width: w, height: h))
        let count = ow * oh * 4
        var st = ic_status()
        let pixels = try Codec.pixels(count: count) { (base) throws(ThumbnailError) in
            guard ic_webp_read_rgba(dec, base, count, Int32(ow), Int32(oh), &st) == IC_OK else {
                throw Codec.error(st, format: .webp)
            }
        }
        guard let image = RGBAImage(width: ow, height: oh, pixels: pixels) else {
            throw .corrupt(format: .webp, detail: "decoder produced no pixels")
        }
        let geometry = Geometry(format: .webp, fullWidth: w, fullHeight: h, width: ow, height: oh,
                                scale: Double(ow) / Double(w), orientation: 1)
        return Decoded(image: image, geometry: geometry, opaque: !(info.has_alpha != 0 || info.animated != 0) || image.isOpaque,
                       partial: false)
    }
}

// MARK: HEIF

/// A HEIC/HEIF primary image decoded by libheif, upright by the file's own irot/imir (applied once, by libheif;
/// the EXIF orientation a HEIF may also carry is not read). libheif keeps the pixels (RGB without alpha): the
/// resizers take them a strip at a time, never as a second whole RGBA image.
final class HEIFImage {
    let geometry: Geometry
    let opaque: Bool
    private let decoder: OpaquePointer

    /// Opens, checks the limits (on the displayed and the coded size), decodes. The input bytes are not needed
    /// afterwards.
    init(_ input: InputBytes, limits: ThumbnailerLimits) throws(ThumbnailError) {
        let (dec, info) = try Self.open(input.bytes, limits: limits)
        var st = ic_status()
        do throws(ThumbnailError) {
            try Self.check(info, limits: limits)
            guard ic_heif_decode(dec, &st) == IC_OK else { throw Codec.error(st, format: .heif) }
        } catch {
            ic_heif_close(dec)
            throw error
        }
        decoder = dec
        geometry = .whole(.heif, width: Int(info.width), height: Int(info.height))
        opaque = info.has_alpha == 0
    }

    deinit { ic_heif_close(decoder) }

    private static func open(_ bytes: UnsafeRawBufferPointer,
                             limits: ThumbnailerLimits) throws(ThumbnailError) -> (OpaquePointer, ic_heif_info) {
        var info = ic_heif_info()
        var st = ic_status()
        guard let base = bytes.baseAddress,
              let dec = ic_heif_open(base.assumingMemoryBound(to: UInt8.self), bytes.count,
                                     Int32(clamping: limits.maxDimension), &info, &st) else {
            if bytes.isEmpty { throw .emptyInput }
            throw Codec.error(st, format: .heif)
        }
        return (dec, info)
    }

    private static func check(_ info: ic_heif_info, limits: ThumbnailerLimits) throws(ThumbnailError) {
        try Codec.checkSize(width: Int(info.width), height: Int(info.height), format: .heif, limits: limits)
        if info.stored_width > 0, info.stored_height > 0 { // a clean aperture may crop a larger coded image
            try Codec.checkSize(width: Int(info.stored_width), height: Int(info.stored_height), format: .heif,
                                limits: limits)
        }
    }

    static func probe(_ bytes: UnsafeRawBufferPointer, limits: ThumbnailerLimits) throws(ThumbnailError) -> ImageInfo {
        let (dec, info) = try open(bytes, limits: limits)
        ic_heif_close(dec)
        try check(info, limits: limits)
        return ImageInfo(width: Int(info.width), height: Int(info.height), format: .heif, orientation: 1,
                         mayHaveAlpha: info.has_alpha != 0)
    }

    /// Copies `rows` rows from `first` into `buffer` as RGBA.
    private func read(first: Int, rows: Int, into buffer: UnsafeMutablePointer<UInt8>) throws(ThumbnailError) {
        var st = ic_status()
        guard ic_heif_read_rows(decoder, Int32(first), Int32(rows), buffer, rows * geometry.width * 4, &st) == IC_OK else {
            throw Codec.error(st, format: .heif)
        }
    }

    /// Hands the rows over in order, 16 at a time, as RGBA.
    func forEachStrip(_ body: (UnsafePointer<UInt8>, Int) -> Void) throws(ThumbnailError) {
        let stripRows = 16
        let strip = UnsafeMutablePointer<UInt8>.allocate(capacity: stripRows * geometry.width * 4)
        defer { strip.deallocate() }
        var y = 0
        while y < geometry.height {
            let rows = min(stripRows, geometry.height - y)
            try read(first: y, rows: rows, into: strip)
            body(strip, rows)
            y += rows
        }
    }

    /// A copy of the whole image.
    func decoded() throws(ThumbnailError) -> Decoded {
        let pixels = try Codec.pixels(count: geometry.width * geometry.height * 4) { (base) throws(ThumbnailError) in
            try read(first: 0, rows: geometry.height, into: base)
        }
        guard let image = RGBAImage(width: geometry.width, height: geometry.height, pixels: pixels) else {
            throw .corrupt(format: .heif, detail: "decoder produced no pixels")
        }
        return Decoded(image: image, geometry: geometry, opaque: opaque || image.isOpaque, partial: false)
    }
}
