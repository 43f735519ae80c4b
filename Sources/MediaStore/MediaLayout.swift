/// Where things live in a media directory. Shared by the server's store and `chat-admin`'s maintenance commands so
/// that both agree on every path.
///
/// - `blobs/sha256/ab/cd/<hex>`: the bytes, named by their SHA-256 (two fan-out levels keep directories small).
/// - `thumbs/ab/cd/<hex>-<size>.<jpg|png>`: thumbnails, made once per blob.
/// - `tmp/`: uploads in progress (`<upload id>.part`) and thumbnails being written; cleaned by the server at start-up.
/// - `trash/`: files a prune is removing, deleted once its transaction commits (restored by `media gc` if it did not).
/// - `quarantine/`: corrupted or stray files set aside by `media verify --repair`, for an operator to inspect.
public struct MediaLayout: Sendable, Equatable {
    public let directory: String

    public init(directory: String) {
        self.directory = directory.hasSuffix("/") && directory.count > 1 ? String(directory.dropLast()) : directory
    }

    public var blobsDirectory: String { directory + "/blobs/sha256" }
    public var thumbnailsDirectory: String { directory + "/thumbs" }
    public var temporaryDirectory: String { directory + "/tmp" }
    public var trashDirectory: String { directory + "/trash" }
    public var quarantineDirectory: String { directory + "/quarantine" }

    public func blobPath(_ hash: String) -> String {
        "\(blobsDirectory)/\(fanOut(hash))/\(hash)"
    }

    public func thumbnailPath(_ hash: String, size: String, type: String) -> String {
        "\(thumbnailsDirectory)/\(fanOut(hash))/\(hash)-\(size).\(type == "image/png" ? "png" : "jpg")"
    }

    public func temporaryPath(upload id: String) -> String { "\(temporaryDirectory)/\(id).part" }

    /// The two fan-out directory levels of a hash, "ab/cd".
    public func fanOut(_ hash: String) -> String {
        let bytes = Array(hash.utf8)
        guard bytes.count >= 4 else { return "00/00" }
        return String(decoding: bytes[0..<2], as: UTF8.self) + "/" + String(decoding: bytes[2..<4], as: UTF8.self)
    }
}
