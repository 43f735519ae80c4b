import MediaDuration
#if canImport(Glibc)
import Glibc
#endif

/// Audio and video durations at ingest (`MediaDuration` on the upload's mapped file), on the media pool.
enum Durations {
    /// Nil for other types and for containers that do not say.
    static func milliseconds(of path: String, size: Int, mimeType: String) async throws(MediaError) -> Int? {
        guard mimeType.hasPrefix("audio/") || mimeType.hasPrefix("video/") || mimeType == "application/ogg" else { return nil }
        return try await MediaWorkers.run({ () -> Result<Int?, MediaError> in
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { return .failure(.storage(operation: "open upload", errno: errno)) }
            defer { close(fd) }
            // Mapped: the parsers touch a few header pages (and, for Ogg, the last page), not the whole file.
            guard let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), mapped != MAP_FAILED else {
                return .failure(.storage(operation: "map upload", errno: errno))
            }
            defer { munmap(mapped, size) }
            return .success(MediaDuration.milliseconds(of: UnsafeRawBufferPointer(start: mapped, count: size), mimeType: mimeType))
        }, stopped: .poolStopped)
    }
}
