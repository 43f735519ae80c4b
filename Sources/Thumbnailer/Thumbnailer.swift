import ImageBuffer

/// Makes thumbnails of JPEG and PNG images (libjpeg-turbo and libpng through `CImageCodecs`).
///
/// Pipeline: header probe and limit checks → decode (JPEGs at the smallest n/8 DCT scale leaving at least twice
/// the target size; progressive JPEGs at 1/8 decode their DC scans only) → premultiplied box + Lanczos-3
/// downscale → EXIF orientation → JPEG (quality 82, progressive, 4:2:0) for opaque results, PNG otherwise.
///
/// A value type without shared state: call it from as many threads as there are cores.
public struct Thumbnailer: Sendable {
    public var limits: ThumbnailerLimits
    public var jpegQuality: Int
    /// zlib level for PNG thumbnails (0...9).
    public var pngCompressionLevel: Int

    public init(limits: ThumbnailerLimits = ThumbnailerLimits(), jpegQuality: Int = 82, pngCompressionLevel: Int = 6) {
        self.limits = limits
        self.jpegQuality = min(max(jpegQuality, 1), 100)
        self.pngCompressionLevel = min(max(pngCompressionLevel, 0), 9)
    }

    // MARK: Probe

    /// Dimensions as displayed (after EXIF orientation) and format, from the header only. Also checks the limits,
    /// so an image that probes fine will not be refused for its size later.
    public func probe(_ data: UnsafeRawBufferPointer) throws(ThumbnailError) -> ImageInfo {
        guard !data.isEmpty else { throw .emptyInput }
        guard data.count <= limits.maxInputBytes else {
            throw .inputTooLarge(bytes: data.count, limit: limits.maxInputBytes)
        }
        switch ImageFormat.sniff(data) {
        case .jpeg: return try JPEGCodec.probe(data, limits: limits)
        case .png: return try PNGCodec.probe(data, limits: limits)
        case nil: throw Self.unrecognised(data)
        }
    }

    public func probe(_ data: [UInt8]) throws(ThumbnailError) -> ImageInfo {
        try Self.borrowing(data) { (input) throws(ThumbnailError) in try probe(input.bytes) }
    }

    // MARK: Decode

    /// Decoded pixels, upright (EXIF orientation applied). With `targetLongestSide`, a JPEG is decoded at the
    /// smallest n/8 scale whose longest side is still at least twice the target (not resized further), so callers
    /// that resize themselves get a sharp source cheaply; without it, at full size.
    public func decode(_ data: UnsafeRawBufferPointer, targetLongestSide: Int? = nil) throws(ThumbnailError) -> RGBAImage {
        let target: DecodeTarget = targetLongestSide.map { .longest(max(1, $0)) } ?? .full
        let decoded = try decode(InputBytes(borrowing: data), target: target)
        return Orientation.apply(decoded.orientation, to: decoded.image)
    }

    public func decode(_ data: [UInt8], targetLongestSide: Int? = nil) throws(ThumbnailError) -> RGBAImage {
        try Self.borrowing(data) { (input) throws(ThumbnailError) in
            try decode(input.bytes, targetLongestSide: targetLongestSide)
        }
    }

    // MARK: Thumbnails

    /// The thumbnail's pixels before encoding (upright, resized, cropped), for callers that draw them.
    public func thumbnailImage(from data: UnsafeRawBufferPointer, spec: ThumbnailSpec) throws(ThumbnailError) -> RGBAImage {
        let decoded = try decode(InputBytes(borrowing: data), target: .specs([spec]))
        return render(decoded, spec: spec)
    }

    public func thumbnailImage(from data: [UInt8], spec: ThumbnailSpec) throws(ThumbnailError) -> RGBAImage {
        try Self.borrowing(data) { (input) throws(ThumbnailError) in try thumbnailImage(from: input.bytes, spec: spec) }
    }

    public func makeThumbnail(from data: UnsafeRawBufferPointer, spec: ThumbnailSpec) throws(ThumbnailError) -> Thumbnail {
        let decoded = try decode(InputBytes(borrowing: data), target: .specs([spec]))
        return try encode(render(decoded, spec: spec), partial: decoded.partial)
    }

    public func makeThumbnail(from data: [UInt8], spec: ThumbnailSpec) throws(ThumbnailError) -> Thumbnail {
        try Self.borrowing(data) { (input) throws(ThumbnailError) in try makeThumbnail(from: input.bytes, spec: spec) }
    }

    /// All sizes from one decode, at the scale the most demanding spec needs.
    public func makeThumbnails(from data: UnsafeRawBufferPointer,
                               specs: [ThumbnailSpec] = ThumbnailSpec.defaults) throws(ThumbnailError) -> [ThumbnailSpec: Thumbnail] {
        try makeThumbnails(InputBytes(borrowing: data), specs: specs)
    }

    public func makeThumbnails(from data: [UInt8],
                               specs: [ThumbnailSpec] = ThumbnailSpec.defaults) throws(ThumbnailError) -> [ThumbnailSpec: Thumbnail] {
        try Self.borrowing(data) { (input) throws(ThumbnailError) in try makeThumbnails(input, specs: specs) }
    }

    /// Reads `inputPath`, writes the thumbnail to `outputPath` (atomically: temporary file + rename) and returns
    /// it. Backs `chat-thumbnail IN OUT --size fit320`.
    @discardableResult
    public func makeThumbnail(inputPath: String, outputPath: String, spec: ThumbnailSpec) throws(ThumbnailError) -> Thumbnail {
        let input = try FileIO.read(path: inputPath, maxBytes: limits.maxInputBytes)
        let decoded = try decode(input, target: .specs([spec]))
        input.releaseIfOwned()
        let thumbnail = try encode(render(decoded, spec: spec), partial: decoded.partial)
        try FileIO.writeAtomically(path: outputPath, bytes: thumbnail.bytes)
        return thumbnail
    }

    /// All sizes of one file from one decode.
    public func makeThumbnails(inputPath: String,
                               specs: [ThumbnailSpec] = ThumbnailSpec.defaults) throws(ThumbnailError) -> [ThumbnailSpec: Thumbnail] {
        try makeThumbnails(FileIO.read(path: inputPath, maxBytes: limits.maxInputBytes), specs: specs)
    }

    // MARK: Internals

    private func makeThumbnails(_ input: InputBytes, specs: [ThumbnailSpec]) throws(ThumbnailError) -> [ThumbnailSpec: Thumbnail] {
        guard !specs.isEmpty else { return [:] }
        let decoded = try decode(input, target: .specs(specs))
        input.releaseIfOwned()
        var result: [ThumbnailSpec: Thumbnail] = [:]
        for spec in specs where result[spec] == nil {
            result[spec] = try encode(render(decoded, spec: spec), partial: decoded.partial)
        }
        return result
    }

    private func decode(_ input: InputBytes, target: DecodeTarget) throws(ThumbnailError) -> Decoded {
        let bytes = input.bytes
        guard !bytes.isEmpty else { throw .emptyInput }
        guard bytes.count <= limits.maxInputBytes else {
            throw .inputTooLarge(bytes: bytes.count, limit: limits.maxInputBytes)
        }
        switch ImageFormat.sniff(bytes) {
        case .jpeg: return try JPEGCodec.decode(input, target: target, limits: limits)
        case .png: return try PNGCodec.decode(input, limits: limits)
        case nil: throw Self.unrecognised(bytes)
        }
    }

    private static func unrecognised(_ bytes: UnsafeRawBufferPointer) -> ThumbnailError {
        ImageFormat.looksLikeDamagedPNG(bytes)
            ? .corrupt(format: .png, detail: "damaged PNG signature (bytes changed, e.g. by a text-mode transfer)")
            : .unsupportedFormat
    }

    /// Resize (never up), crop, orient.
    func render(_ decoded: Decoded, spec: ThumbnailSpec) -> RGBAImage {
        let w = decoded.fullWidth, h = decoded.fullHeight, s = decoded.scale
        let outW: Int, outH: Int
        let window: Resampler.Window
        switch spec.mode {
        case .fit:
            (outW, outH) = Self.fitSize(width: w, height: h, longest: spec.size)
            window = .init(x: 0, y: 0, width: Double(w) * s, height: Double(h) * s)
        case .crop:
            let side = min(w, h)
            outW = min(spec.size, side)
            outH = outW
            window = .init(x: Double((w - side) / 2) * s, y: Double((h - side) / 2) * s,
                           width: Double(side) * s, height: Double(side) * s)
        }
        let resized = Resampler.resample(decoded.image, window: window, width: outW, height: outH,
                                         opaque: decoded.opaque)
        return Orientation.apply(decoded.orientation, to: resized)
    }

    /// Longest side `longest`, aspect kept (rounded), at least 1 pixel; never larger than the image.
    static func fitSize(width: Int, height: Int, longest: Int) -> (Int, Int) {
        guard max(width, height) > longest else { return (width, height) }
        if width >= height {
            return (longest, max(1, (height * longest + width / 2) / width))
        }
        return (max(1, (width * longest + height / 2) / height), longest)
    }

    private func encode(_ image: RGBAImage, partial: Bool) throws(ThumbnailError) -> Thumbnail {
        if image.isOpaque {
            let bytes = try JPEGCodec.encode(image, quality: jpegQuality)
            return Thumbnail(bytes: bytes, format: .jpeg, width: image.width, height: image.height, isPartial: partial)
        }
        let bytes = try PNGCodec.encode(image, compressionLevel: pngCompressionLevel)
        return Thumbnail(bytes: bytes, format: .png, width: image.width, height: image.height, isPartial: partial)
    }

    /// Runs `body` on the array's bytes, keeping the typed error (Array.withUnsafeBytes would erase it).
    private static func borrowing<R>(_ data: [UInt8],
                                     _ body: (InputBytes) throws(ThumbnailError) -> R) throws(ThumbnailError) -> R {
        let result: Result<R, ThumbnailError> = data.withUnsafeBytes { raw in
            Result { () throws(ThumbnailError) -> R in try body(InputBytes(borrowing: raw)) }
        }
        return try result.get()
    }
}

/// How large the decoded image must be.
enum DecodeTarget {
    case full
    case longest(Int)
    case specs([ThumbnailSpec])

    /// For a full-resolution size: at least twice each target (or the whole image when it is smaller).
    func need(width: Int, height: Int) -> DecodeNeed? {
        let long = max(width, height), short = min(width, height)
        switch self {
        case .full:
            return nil
        case .longest(let n):
            return DecodeNeed(minLong: 2 * min(n, long), minShort: 0)
        case .specs(let specs):
            var need = DecodeNeed(minLong: 0, minShort: 0)
            for spec in specs {
                switch spec.mode {
                case .fit: need.minLong = max(need.minLong, 2 * min(spec.size, long))
                case .crop: need.minShort = max(need.minShort, 2 * min(spec.size, short))
                }
            }
            return need
        }
    }
}
