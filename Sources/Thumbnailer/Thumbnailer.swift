import ImageBuffer

/// Makes thumbnails of JPEG, PNG, GIF, WebP and HEIC/HEIF images (libjpeg-turbo, libpng, giflib, libwebp and
/// libheif through `CImageCodecs`). Of an animated GIF or WebP, the first frame.
///
/// Pipeline: header probe and limit checks → decode (JPEGs at the smallest n/8 DCT scale leaving at least twice
/// the target size; progressive JPEGs at 1/8 decode their DC scans only; still WebPs scaled by libwebp to twice the
/// target; HEIFs upright by their own transforms) → premultiplied box + Lanczos-3 downscale → EXIF orientation
/// (JPEG) → JPEG (quality 82, progressive, 4:2:0) for opaque results, PNG otherwise.
///
/// A value type without shared state: call it from as many threads as there are cores.
public struct Thumbnailer: Sendable {
    public var limits: ThumbnailerLimits
    public var jpegQuality: Int
    /// zlib level for PNG thumbnails (0...9).
    public var pngCompressionLevel: Int
    /// Resize on a second thread while the decoder makes the next rows (`StripPipeline`), for images large enough
    /// to gain from it. Off, each thumbnail uses one thread.
    public var pipelined: Bool

    public init(limits: ThumbnailerLimits = ThumbnailerLimits(), jpegQuality: Int = 82, pngCompressionLevel: Int = 6,
                pipelined: Bool = true) {
        self.limits = limits
        self.pipelined = pipelined
        self.jpegQuality = min(max(jpegQuality, 1), 100)
        self.pngCompressionLevel = min(max(pngCompressionLevel, 0), 9)
    }

    // MARK: Probe

    /// Dimensions as displayed (after EXIF orientation) and format, from the header only (and, for GIF and WebP,
    /// the frame count, from the frames' headers). Also checks the limits, so an image that probes fine will not be
    /// refused for its size later.
    public func probe(_ data: UnsafeRawBufferPointer) throws(ThumbnailError) -> ImageInfo {
        switch try format(of: data) {
        case .jpeg: return try JPEGCodec.probe(data, limits: limits)
        case .png: return try PNGCodec.probe(data, limits: limits)
        case .gif: return try GIFCodec.probe(data, limits: limits)
        case .webp: return try WebPCodec.probe(data, limits: limits)
        case .heif: return try HEIFImage.probe(data, limits: limits)
        }
    }

    public func probe(_ data: [UInt8]) throws(ThumbnailError) -> ImageInfo {
        try Self.borrowing(data) { (input) throws(ThumbnailError) in try probe(input.bytes) }
    }

    // MARK: Decode

    /// Decoded pixels, upright (EXIF orientation applied; a HEIF's own transforms). With `targetLongestSide`, a JPEG
    /// is decoded at the smallest n/8 scale whose longest side is still at least twice the target, and a still WebP
    /// scaled to about that (not resized further), so callers that resize themselves get a sharp source cheaply;
    /// without it, at full size. Of an animation, the first frame.
    public func decode(_ data: UnsafeRawBufferPointer, targetLongestSide: Int? = nil) throws(ThumbnailError) -> RGBAImage {
        let target: DecodeTarget = targetLongestSide.map { .longest(max(1, $0)) } ?? .full
        let decoded = try decode(InputBytes(borrowing: data), target: target)
        return Orientation.apply(decoded.geometry.orientation, to: decoded.image)
    }

    public func decode(_ data: [UInt8], targetLongestSide: Int? = nil) throws(ThumbnailError) -> RGBAImage {
        try Self.borrowing(data) { (input) throws(ThumbnailError) in
            try decode(input.bytes, targetLongestSide: targetLongestSide)
        }
    }

    // MARK: Thumbnails

    /// The thumbnail's pixels before encoding (upright, resized, cropped), for callers that draw them.
    public func thumbnailImage(from data: UnsafeRawBufferPointer, spec: ThumbnailSpec) throws(ThumbnailError) -> RGBAImage {
        try render(InputBytes(borrowing: data), specs: [spec]).images[0]
    }

    public func thumbnailImage(from data: [UInt8], spec: ThumbnailSpec) throws(ThumbnailError) -> RGBAImage {
        try Self.borrowing(data) { (input) throws(ThumbnailError) in try thumbnailImage(from: input.bytes, spec: spec) }
    }

    public func makeThumbnail(from data: UnsafeRawBufferPointer, spec: ThumbnailSpec) throws(ThumbnailError) -> Thumbnail {
        try thumbnails(InputBytes(borrowing: data), specs: [spec])[0]
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
        try makeThumbnails(inputPath: inputPath, outputs: [(spec, outputPath)])[0]
    }

    /// Reads `inputPath` once, decodes it once, and writes each size's thumbnail to its path (atomically), in
    /// order; returns them in the same order. Backs `chat-thumbnail IN OUT --size S --size S ...`, which makes the
    /// server's sizes as the server does.
    @discardableResult
    public func makeThumbnails(inputPath: String,
                               outputs: [(spec: ThumbnailSpec, path: String)]) throws(ThumbnailError) -> [Thumbnail] {
        let thumbnails = try thumbnails(FileIO.read(path: inputPath, maxBytes: limits.maxInputBytes),
                                        specs: outputs.map(\.spec))
        for (thumbnail, output) in zip(thumbnails, outputs) {
            try FileIO.writeAtomically(path: output.path, bytes: thumbnail.bytes)
        }
        return thumbnails
    }

    /// All sizes of one file from one decode.
    public func makeThumbnails(inputPath: String,
                               specs: [ThumbnailSpec] = ThumbnailSpec.defaults) throws(ThumbnailError) -> [ThumbnailSpec: Thumbnail] {
        try makeThumbnails(FileIO.read(path: inputPath, maxBytes: limits.maxInputBytes), specs: specs)
    }

    // MARK: Internals

    private func makeThumbnails(_ input: InputBytes, specs: [ThumbnailSpec]) throws(ThumbnailError) -> [ThumbnailSpec: Thumbnail] {
        var unique: [ThumbnailSpec] = []
        for spec in specs where !unique.contains(spec) { unique.append(spec) }
        return try Dictionary(uniqueKeysWithValues: zip(unique, thumbnails(input, specs: unique)))
    }

    /// One thumbnail per spec, in order (exactly as many), from one decode.
    private func thumbnails(_ input: InputBytes, specs: [ThumbnailSpec]) throws(ThumbnailError) -> [Thumbnail] {
        guard !specs.isEmpty else { return [] }
        let rendered = try render(input, specs: specs)
        var made: [Thumbnail] = []
        for image in rendered.images { made.append(try encode(image, partial: rendered.partial)) }
        return made
    }

    /// Images smaller than this (decoded pixels) are resized on the decoding thread: a second thread would cost
    /// more than it saves.
    static let pipelineMinimumPixels = 64 * 1024

    /// Decodes once and resizes to every spec (upright, resized, cropped). JPEGs stream: the resizers take the
    /// rows strip by strip on a second thread while the decoder makes the next ones (`StripPipeline`).
    func render(_ input: InputBytes, specs: [ThumbnailSpec],
                threaded: Bool? = nil) throws(ThumbnailError) -> (images: [RGBAImage], partial: Bool) {
        switch try format(of: input.bytes) {
        case .jpeg:
            let decoder = try JPEGRowDecoder(input, target: .specs(specs), limits: limits)
            let g = decoder.geometry
            let streams = specs.map { Self.stream(for: $0, geometry: g, opaque: true) }
            try StripPipeline.run(
                rowBytes: g.width * 4, stripRows: 16,
                threaded: threaded ?? (pipelined && g.width * g.height >= Self.pipelineMinimumPixels),
                produce: { (strip, maxRows) throws(ThumbnailError) in try decoder.read(into: strip, maxRows: maxRows) },
                consume: { strip, rows in for stream in streams { stream.push(strip, rows: rows) } })
            return (streams.map { Orientation.apply(g.orientation, to: $0.finish()) }, decoder.isPartial)
        case .png, .gif, .webp:
            let decoded = try decode(input, target: .specs(specs))
            input.releaseIfOwned()
            return (specs.map { render(decoded, spec: $0) }, decoded.partial)
        case .heif:
            // libheif decodes whole into its own buffer; the resizers take its rows from there a strip at a time.
            let image = try HEIFImage(input, limits: limits)
            input.releaseIfOwned()
            let streams = specs.map { Self.stream(for: $0, geometry: image.geometry, opaque: image.opaque) }
            try image.forEachStrip { rows, count in for stream in streams { stream.push(rows, rows: count) } }
            return (streams.map { $0.finish() }, false)
        }
    }

    private func decode(_ input: InputBytes, target: DecodeTarget) throws(ThumbnailError) -> Decoded {
        switch try format(of: input.bytes) {
        case .jpeg: return try JPEGCodec.decode(input, target: target, limits: limits)
        case .png: return try PNGCodec.decode(input, limits: limits)
        case .gif: return try GIFCodec.decode(input, limits: limits)
        case .webp: return try WebPCodec.decode(input, target: target, limits: limits)
        case .heif: return try HEIFImage(input, limits: limits).decoded()
        }
    }

    /// The format of `bytes`, after the checks every entry point makes first: not empty, not over the limit.
    private func format(of bytes: UnsafeRawBufferPointer) throws(ThumbnailError) -> ImageFormat {
        guard !bytes.isEmpty else { throw .emptyInput }
        guard bytes.count <= limits.maxInputBytes else {
            throw .inputTooLarge(bytes: bytes.count, limit: limits.maxInputBytes)
        }
        guard let format = ImageFormat.sniff(bytes) else {
            throw ImageFormat.looksLikeDamagedPNG(bytes)
                ? .corrupt(format: .png, detail: "damaged PNG signature (bytes changed, e.g. by a text-mode transfer)")
                : .unsupportedFormat
        }
        return format
    }

    /// Resize (never up), crop, orient a whole decoded image.
    func render(_ decoded: Decoded, spec: ThumbnailSpec) -> RGBAImage {
        let stream = Self.stream(for: spec, geometry: decoded.geometry, opaque: decoded.opaque)
        stream.push(decoded.image)
        return Orientation.apply(decoded.geometry.orientation, to: stream.finish())
    }

    /// The resize (never up) and crop `spec` asks of an image of this geometry.
    static func stream(for spec: ThumbnailSpec, geometry g: Geometry, opaque: Bool) -> ResampleStream {
        let w = g.fullWidth, h = g.fullHeight, s = g.scale
        let outW: Int, outH: Int
        let window: ResampleStream.Window
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
        return ResampleStream(sourceWidth: g.width, sourceHeight: g.height, window: window, width: outW, height: outH,
                              opaque: opaque)
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
