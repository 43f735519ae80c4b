import CImageCodecs

/// Image file formats the thumbnailer reads (all) and writes (JPEG and PNG thumbnails).
public enum ImageFormat: String, Sendable, Hashable, Codable, CaseIterable {
    case jpeg
    case png
    /// First frame of a still or animated GIF.
    case gif
    /// Still or animated (first frame) WebP, lossy or lossless.
    case webp
    /// HEIC/HEIF still image (the primary image), upright by the file's own transforms.
    case heif

    public var mimeType: String {
        switch self {
        case .jpeg: "image/jpeg"
        case .png: "image/png"
        case .gif: "image/gif"
        case .webp: "image/webp"
        case .heif: "image/heif"
        }
    }

    public var fileExtension: String {
        switch self {
        case .jpeg: "jpg"
        case .png: "png"
        case .gif: "gif"
        case .webp: "webp"
        case .heif: "heif"
        }
    }

    var displayName: String {
        switch self {
        case .jpeg: "JPEG"
        case .png: "PNG"
        case .gif: "GIF"
        case .webp: "WebP"
        case .heif: "HEIF"
        }
    }

    /// Recognises the format by its signature (HEIF by libheif's brand check).
    static func sniff(_ bytes: UnsafeRawBufferPointer) -> ImageFormat? {
        if bytes.count >= 3, bytes[0] == 0xFF, bytes[1] == 0xD8, bytes[2] == 0xFF { return .jpeg }
        let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        if bytes.count >= 8, bytes.prefix(8).elementsEqual(png) { return .png }
        if bytes.count >= 6, bytes.prefix(6).elementsEqual("GIF87a".utf8) || bytes.prefix(6).elementsEqual("GIF89a".utf8) {
            return .gif
        }
        if bytes.count >= 12, bytes.prefix(4).elementsEqual("RIFF".utf8), bytes[8..<12].elementsEqual("WEBP".utf8) {
            return .webp
        }
        if let base = bytes.baseAddress, ic_heif_sniff(base.assumingMemoryBound(to: UInt8.self), bytes.count) != 0 {
            return .heif
        }
        return nil
    }

    /// A PNG whose 8-byte signature is damaged (e.g. CR/LF translated by a text-mode transfer) still has its IHDR
    /// chunk near the start: worth a "corrupt PNG" error rather than "not an image".
    static func looksLikeDamagedPNG(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let ihdr: [UInt8] = Array("IHDR".utf8)
        let head = bytes.prefix(24)
        guard head.count >= 16 else { return false }
        return (8...(head.count - 4)).contains { head[$0..<($0 + 4)].elementsEqual(ihdr) }
    }
}

/// What `Thumbnailer.probe` reads from a header, without decoding pixels.
public struct ImageInfo: Sendable, Hashable {
    /// Size as displayed, i.e. after the EXIF orientation (width and height swapped for orientations 5 to 8), or
    /// after a HEIF's own rotation and mirroring. For GIF and animated WebP, the canvas the first frame is shown on.
    public let width: Int
    public let height: Int
    public let format: ImageFormat
    /// EXIF orientation of a JPEG, 1...8 (1 when absent). Always 1 for the other formats: a HEIF's transforms are
    /// applied by its decoder (and its EXIF orientation is ignored, as the HEIF specification asks).
    public let orientation: Int
    /// The format can carry transparency here (PNG alpha channel or tRNS, a GIF transparent colour, WebP or HEIF
    /// alpha, an animation's canvas); pixels may still all be opaque.
    public let mayHaveAlpha: Bool
    /// Frames in a GIF or WebP animation; 1 for a still image. Counted without decoding, up to
    /// `ThumbnailerLimits.maxFrames`.
    public let frameCount: Int
    /// The count stopped early (at `ThumbnailerLimits.maxFrames`, or at damaged data after the first frame), so the
    /// file has at least `frameCount` frames.
    public let frameCountIsLowerBound: Bool

    /// More than one frame: an animated GIF or WebP (only the first frame is thumbnailed).
    public var isAnimated: Bool { frameCount > 1 }

    init(width: Int, height: Int, format: ImageFormat, orientation: Int, mayHaveAlpha: Bool, frameCount: Int = 1,
         frameCountIsLowerBound: Bool = false) {
        self.width = width
        self.height = height
        self.format = format
        self.orientation = orientation
        self.mayHaveAlpha = mayHaveAlpha
        self.frameCount = frameCount
        self.frameCountIsLowerBound = frameCountIsLowerBound
    }
}

/// An encoded thumbnail.
public struct Thumbnail: Sendable, Hashable {
    public let bytes: [UInt8]
    /// JPEG for opaque images, PNG when any pixel is transparent.
    public let format: ImageFormat
    public let width: Int
    public let height: Int
    /// The source was damaged or cut short but enough decoded for a preview (missing parts are grey).
    public let isPartial: Bool

    public var mimeType: String { format.mimeType }
}

/// Safety limits for untrusted images. Checked on the header, before any large allocation.
public struct ThumbnailerLimits: Sendable, Hashable {
    /// Largest width × height decoded (default 50 MP). Larger images are refused, not downscaled, because a PNG,
    /// GIF, HEIF or lossless WebP is decoded whole (4 bytes per pixel) and a progressive JPEG keeps every
    /// coefficient until its last scan. For GIF and animated WebP this is the canvas, for HEIF the larger of the
    /// coded and displayed sizes.
    public var maxPixels: Int
    /// Largest width or height.
    public var maxDimension: Int
    /// Largest input accepted, in bytes.
    public var maxInputBytes: Int
    /// Most scans accepted in a progressive JPEG (normal files have about 10; each scan is a pass over the image).
    public var maxJPEGScans: Int
    /// Memory libjpeg may use for coefficient buffers (progressive JPEGs keep the whole image's coefficients).
    public var maxDecoderMemory: Int
    /// Most frames of a GIF or WebP animation counted by `probe` (each GIF frame costs an LZW table reset even
    /// when skipped); a longer animation reports this many and `frameCountIsLowerBound`. Only the first frame is
    /// ever decoded.
    public var maxFrames: Int

    public init(maxPixels: Int = 50_000_000, maxDimension: Int = 30_000, maxInputBytes: Int = 100 << 20,
                maxJPEGScans: Int = 150, maxDecoderMemory: Int = 512 << 20, maxFrames: Int = 10_000) {
        self.maxPixels = maxPixels
        self.maxDimension = maxDimension
        self.maxInputBytes = maxInputBytes
        self.maxJPEGScans = maxJPEGScans
        self.maxDecoderMemory = maxDecoderMemory
        self.maxFrames = max(1, maxFrames)
    }
}
