import ChatProtocol
import ChatStore
import Logging
import Thumbnailer
#if canImport(Glibc)
import Glibc
#endif

/// Dimensions and thumbnails of image blobs (JPEG, PNG, GIF and WebP first frames, HEIC/HEIF), made once per blob
/// from a local copy of its bytes (the finished upload's file) and kept in the blob storage next to the blob.
/// Decoding and encoding run on the media pool, never on an event loop or the cooperative pool. Public for
/// `chat-admin media strip-metadata`, whose new blobs get their thumbnails the way uploads do.
public struct ThumbnailService: Sendable {
    let storage: any BlobStorage
    let thumbnailer = Thumbnailer()
    let logger: Logger

    public init(storage: any BlobStorage, logger: Logger) {
        self.storage = storage
        self.logger = logger
    }

    /// The sniffed types the thumbnailer reads (libmagic says image/heic for HEVC-coded HEIF, image/heif for others).
    static let thumbnailedTypes: Set<String> = ["image/jpeg", "image/png", "image/gif", "image/webp", "image/heic", "image/heif"]

    /// `blob` with its dimensions and thumbnails, made from the file at `path`. A thumbnail already stored (from an
    /// earlier attempt) is reused, not made again. An image the thumbnailer refuses just gets none.
    public func addThumbnails(to blob: BlobRecord, from path: String) async throws(MediaError) -> BlobRecord {
        guard Self.thumbnailedTypes.contains(blob.mimeType) else { return blob }
        let thumbnailer = self.thumbnailer
        let logger = self.logger
        let made = try await MediaWorkers.run({ () -> Result<Made?, MediaError> in
            Self.make(from: path, size: blob.size, hash: blob.hash, thumbnailer: thumbnailer, logger: logger)
        }, stopped: .poolStopped)
        guard let made else { return blob }
        var blob = blob
        blob.width = made.width
        blob.height = made.height
        blob.frames = made.frames > 1 ? made.frames : nil
        var infos: [ThumbnailInfo] = []
        for spec in ThumbnailSpec.defaults {
            guard let thumbnail = made.thumbnails[spec] else { continue }
            do throws(BlobStorageError) {
                let key = try BlobKey(thumbnailOf: blob.hash, size: spec.description, type: thumbnail.mimeType)
                if try await storage.size(of: key) == nil {
                    try await storage.put(key, bytes: thumbnail.bytes)
                }
            } catch {
                throw .stored(error)
            }
            infos.append(ThumbnailInfo(size: spec.description, type: thumbnail.mimeType, width: thumbnail.width, height: thumbnail.height))
        }
        blob.thumbnails = infos
        return blob
    }

    private struct Made: Sendable {
        var width: Int
        var height: Int
        var frames: Int
        var thumbnails: [ThumbnailSpec: Thumbnail]
    }

    /// Runs on the pool. Nil when the thumbnailer cannot read the image; no thumbnails when it cannot make them.
    private static func make(from path: String, size: Int, hash: String, thumbnailer: Thumbnailer, logger: Logger) -> Result<Made?, MediaError> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .failure(.storage(operation: "open blob", errno: errno)) }
        defer { close(fd) }
        // Mapped, not read: the image's bytes stay in the page cache instead of the heap.
        guard let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), mapped != MAP_FAILED else {
            return .failure(.storage(operation: "map blob", errno: errno))
        }
        defer { munmap(mapped, size) }
        let bytes = UnsafeRawBufferPointer(start: mapped, count: size)
        var made: Made?
        do {
            let info = try thumbnailer.probe(bytes)
            made = Made(width: info.width, height: info.height, frames: info.frameCount, thumbnails: [:])
            made?.thumbnails = try thumbnailer.makeThumbnails(from: bytes, specs: ThumbnailSpec.defaults)
        } catch {
            logger.info("no thumbnails for an image", metadata: ["sha256": "\(hash)", "reason": "\(error)"])
        }
        return .success(made)
    }
}
