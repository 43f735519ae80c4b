/// Why an image could not be thumbnailed. `description` says what went wrong and what to do about it.
public enum ThumbnailError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Not JPEG, PNG, GIF, WebP or HEIC/HEIF.
    case unsupportedFormat
    /// JPEG with other than 8-bit samples (e.g. 12-bit medical or camera files).
    case unsupportedJPEGPrecision(bits: Int)
    /// A valid file using something the decoders do not handle (the codec's message).
    case unsupportedFeature(format: ImageFormat, detail: String)
    /// Header dimensions over `ThumbnailerLimits.maxPixels`.
    case tooManyPixels(width: Int, height: Int, limit: Int)
    /// A side over `ThumbnailerLimits.maxDimension`.
    case dimensionTooLarge(width: Int, height: Int, limit: Int)
    case inputTooLarge(bytes: Int, limit: Int)
    case emptyInput
    /// The codec rejected the data (its message).
    case corrupt(format: ImageFormat, detail: String)
    /// The data ends before anything could be decoded.
    case truncated(format: ImageFormat, detail: String)
    /// A hostile-input guard fired: too many scans, decoder memory limit, libheif's size limit.
    case resourceLimit(format: ImageFormat, detail: String)
    case outOfMemory
    /// Not `cropN` or `fitN`.
    case invalidSpec(String)
    /// Reading the input or writing the output failed (`errno`).
    case fileError(path: String, operation: String, errno: Int32, message: String)
    /// The encoder failed (its message); a bug rather than bad input.
    case encodingFailed(format: ImageFormat, detail: String)

    public var description: String {
        switch self {
        case .unsupportedFormat:
            return "not a JPEG, PNG, GIF, WebP or HEIC/HEIF image (unrecognised file signature); only those get "
                + "thumbnails, so show a generic attachment icon or convert the image"
        case .unsupportedJPEGPrecision(let bits):
            return "\(bits)-bit JPEG is unsupported: only 8-bit JPEG samples are decoded; "
                + "re-encode the image as an ordinary 8-bit JPEG or as PNG"
        case .unsupportedFeature(let format, let detail):
            return "unsupported \(format.displayName) feature: \(detail); re-encode the image as an ordinary "
                + "\(format.displayName)"
        case .tooManyPixels(let width, let height, let limit):
            return "image is \(width)x\(height) = \(width * height) pixels, over the limit of \(limit); refused "
                + "before decoding to bound memory: scale it down before uploading, or raise "
                + "ThumbnailerLimits.maxPixels if such images are expected"
        case .dimensionTooLarge(let width, let height, let limit):
            return "image is \(width)x\(height), a side is over the limit of \(limit) pixels; "
                + "scale it down before uploading, or raise ThumbnailerLimits.maxDimension"
        case .inputTooLarge(let bytes, let limit):
            return "input is \(bytes) bytes, over the limit of \(limit); "
                + "raise ThumbnailerLimits.maxInputBytes if such files are expected"
        case .emptyInput:
            return "input is empty (0 bytes); the upload is missing or incomplete"
        case .corrupt(let format, let detail):
            return "corrupt \(format.displayName) data: \(detail); the file is damaged or is not really a "
                + "\(format.displayName): re-export or upload it again"
        case .truncated(let format, let detail):
            return "truncated \(format.displayName): \(detail); the file ends before any image data, "
                + "so the upload is probably incomplete: upload it again"
        case .resourceLimit(let format, let detail):
            return "\(format.displayName) exceeds a decoder safety limit: \(detail); the file is probably "
                + "crafted or broken (raise ThumbnailerLimits if it is a genuine image)"
        case .outOfMemory:
            return "out of memory while decoding; retry later or lower ThumbnailerLimits.maxPixels"
        case .invalidSpec(let string):
            return "invalid thumbnail size \"\(string)\": expected cropN (centred N×N crop) or fitN "
                + "(longest side N), N from 1 to \(ThumbnailSpec.maxSize), e.g. crop96, fit320, fit800"
        case .fileError(let path, let operation, let errno, let message):
            return "cannot \(operation) \(path): \(message) (errno \(errno))"
        case .encodingFailed(let format, let detail):
            return "\(format.displayName) encoding failed: \(detail) (a bug: please report it with the input)"
        }
    }
}
