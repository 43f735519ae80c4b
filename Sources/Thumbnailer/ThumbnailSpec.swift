/// One thumbnail size: `cropN` (N×N, centred square crop) or `fitN` (longest side N). Written as the string
/// `crop96`, `fit320`, … in configuration, command lines and JSON.
public struct ThumbnailSpec: Sendable, Hashable, Codable, LosslessStringConvertible {
    public enum Mode: String, Sendable, Hashable, CaseIterable {
        /// Centred square crop, N×N.
        case crop
        /// Whole image, longest side N.
        case fit
    }

    public let mode: Mode
    /// Pixels: the side of a crop, the longest side of a fit. Images smaller than this are never upscaled.
    public let size: Int

    /// Largest accepted size; thumbnails are previews, not re-encodes.
    public static let maxSize = 4096

    public static let crop96 = ThumbnailSpec(validMode: .crop, size: 96)
    public static let fit320 = ThumbnailSpec(validMode: .fit, size: 320)
    public static let fit800 = ThumbnailSpec(validMode: .fit, size: 800)
    public static let defaults: [ThumbnailSpec] = [crop96, fit320, fit800]

    private init(validMode: Mode, size: Int) {
        self.mode = validMode
        self.size = size
    }

    /// Nil when `size` is outside `1...maxSize`.
    public init?(mode: Mode, size: Int) {
        guard (1...Self.maxSize).contains(size) else { return nil }
        self.init(validMode: mode, size: size)
    }

    /// Parses `cropN` / `fitN` (lowercase, decimal N in `1...maxSize`).
    public init?(_ description: String) {
        let mode: Mode
        let digits: Substring
        if description.hasPrefix("crop") {
            mode = .crop
            digits = description.dropFirst(4)
        } else if description.hasPrefix("fit") {
            mode = .fit
            digits = description.dropFirst(3)
        } else {
            return nil
        }
        // Int("+5") would accept a sign; only plain digits are a spec.
        guard !digits.isEmpty, digits.count <= 5, digits.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
              let size = Int(digits) else { return nil }
        self.init(mode: mode, size: size)
    }

    /// Like `init?(_:)`, with an error that says what is accepted.
    public init(parsing string: String) throws(ThumbnailError) {
        guard let spec = ThumbnailSpec(string) else { throw .invalidSpec(string) }
        self = spec
    }

    public var description: String { "\(mode.rawValue)\(size)" }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let string = try container.decode(String.self)
        guard let spec = ThumbnailSpec(string) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "invalid thumbnail size \"\(string)\": expected cropN or fitN, N in 1...\(Self.maxSize)")
        }
        self = spec
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
