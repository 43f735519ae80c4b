/// Removes location, device and other private metadata from images without re-encoding them (see `JPEGCleaner`
/// and `PNGCleaner` for what each format keeps). Plans are made from bytes in memory or mapped; parsing is bounded
/// by the input (no offset is followed outside it, no count is trusted), and hostile input ends in a
/// `MetadataCleaningError`, never a crash.
public enum MetadataCleaner {
    /// The formats cleaned, by sniffed MIME type.
    public enum Format: String, Sendable, CaseIterable {
        case jpeg = "image/jpeg"
        case png = "image/png"

        public init?(mimeType: String) {
            self.init(rawValue: mimeType)
        }
    }

    /// The plan of `data` cleaned as `format`.
    public static func plan(_ data: UnsafeRawBufferPointer, format: Format) throws(MetadataCleaningError) -> CleaningPlan {
        switch format {
        case .jpeg: try JPEGCleaner.plan(data)
        case .png: try PNGCleaner.plan(data)
        }
    }

    /// `data` cleaned as `format`, in memory.
    public static func clean(_ data: [UInt8], format: Format) throws(MetadataCleaningError) -> (bytes: [UInt8], plan: CleaningPlan) {
        let result = data.withUnsafeBytes { raw in
            Result { () throws(MetadataCleaningError) -> ([UInt8], CleaningPlan) in
                let made = try Self.plan(raw, format: format)
                return (made.isUnchanged ? data : made.bytes(from: raw), made)
            }
        }
        return try result.get()
    }
}
