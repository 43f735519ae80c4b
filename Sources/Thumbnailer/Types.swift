/// Image file formats the thumbnailer reads and writes.
public enum ImageFormat: String, Sendable, Hashable, Codable, CaseIterable {
    case jpeg
    case png

    public var mimeType: String {
        switch self {
        case .jpeg: "image/jpeg"
        case .png: "image/png"
        }
    }

    public var fileExtension: String {
        switch self {
        case .jpeg: "jpg"
        case .png: "png"
        }
    }

    var displayName: String {
        switch self {
        case .jpeg: "JPEG"
        case .png: "PNG"
        }
    }

    /// Recognises the format by its signature.
    static func sniff(_ bytes: UnsafeRawBufferPointer) -> ImageFormat? {
        if bytes.count >= 3, bytes[0] == 0xFF, bytes[1] == 0xD8, bytes[2] == 0xFF { return .jpeg }
        let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        if bytes.count >= 8, bytes.prefix(8).elementsEqual(png) { return .png }
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
    /// Size as displayed, i.e. after the EXIF orientation (width and height swapped for orientations 5 to 8).
    public let width: Int
    public let height: Int
    public let format: ImageFormat
    /// EXIF orientation, 1...8 (1 when absent).
    public let orientation: Int
    /// The format can carry transparency here (PNG alpha channel or tRNS); pixels may still all be opaque.
    public let mayHaveAlpha: Bool
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
    /// Largest width × height decoded (default 50 MP). Larger images are refused, not downscaled, because a PNG
    /// is decoded whole (4 bytes per pixel) and a progressive JPEG keeps every coefficient until its last scan.
    public var maxPixels: Int
    /// Largest width or height.
    public var maxDimension: Int
    /// Largest input accepted, in bytes.
    public var maxInputBytes: Int
    /// Most scans accepted in a progressive JPEG (normal files have about 10; each scan is a pass over the image).
    public var maxJPEGScans: Int
    /// Memory libjpeg may use for coefficient buffers (progressive JPEGs keep the whole image's coefficients).
    public var maxDecoderMemory: Int

    public init(maxPixels: Int = 50_000_000, maxDimension: Int = 30_000, maxInputBytes: Int = 100 << 20,
                maxJPEGScans: Int = 150, maxDecoderMemory: Int = 512 << 20) {
        self.maxPixels = maxPixels
        self.maxDimension = maxDimension
        self.maxInputBytes = maxInputBytes
        self.maxJPEGScans = maxJPEGScans
        self.maxDecoderMemory = maxDecoderMemory
    }
}
