import Crypto
import MediaPrivacy
#if canImport(Glibc)
import Glibc
#endif

/// What happens to private image metadata (location, device details) at ingest: `chat-server
/// --keep-image-metadata` and `--uncleanable-images`.
public enum ImageMetadataPolicy: Sendable, Equatable {
    /// Files are stored as sent.
    case keep
    /// JPEG and PNG are stored without it; `uncleanable` says what to do with one that cannot be cleaned safely.
    case remove(uncleanable: UncleanableImages)

    public static let `default` = ImageMetadataPolicy.remove(uncleanable: .store)
}

/// What to do with an image whose metadata cannot be removed safely (malformed EXIF, truncated segments).
public enum UncleanableImages: String, Sendable, Equatable, CaseIterable {
    /// Store it as sent; its attachment says `"metadataRemoved": false`.
    case store
    /// Refuse the upload (`uncleanable_image`).
    case refuse
}

/// The ingest step between hashing and storing: a sealed JPEG or PNG upload's file is replaced by its cleaned
/// version (see `MetadataCleaner`), whose hash then addresses the blob. Runs on the media pool. Public for
/// `chat-admin media strip-metadata`, which cleans blobs stored before this step existed the same way.
public enum MetadataRemoval {
    public enum Outcome: Sendable, Equatable {
        /// Not an image this store cleans, or the operator keeps metadata.
        case notApplicable
        /// Nothing had to go: the file stays as sent.
        case alreadyClean
        /// The file was rewritten without its private metadata: `hash` and `size` are the new bytes'.
        case cleaned(hash: String, size: Int, removed: [RemovedMetadata])
        /// It could not be cleaned and stays as sent.
        case uncleanable(MetadataCleaningError)
    }

    /// Cleans the file at `path` (`size` bytes, sniffed as `mimeType`) in place: the cleaned bytes go to a sibling
    /// file, hashed as they are written, which is then renamed over it.
    public static func clean(path: String, size: Int, mimeType: String, policy: ImageMetadataPolicy,
                             writer: any MediaFileWriter) async throws(MediaError) -> Outcome {
        guard case .remove(let uncleanable) = policy, let format = MetadataCleaner.Format(mimeType: mimeType) else {
            return .notApplicable
        }
        let outcome = try await MediaWorkers.run({ () -> Result<Outcome, MediaError> in
            cleanNow(path: path, size: size, format: format, writer: writer)
        }, stopped: .poolStopped)
        if case .uncleanable(let reason) = outcome, uncleanable == .refuse { throw .uncleanableImage(reason) }
        return outcome
    }

    private static func cleanNow(path: String, size: Int, format: MetadataCleaner.Format,
                                 writer: any MediaFileWriter) -> Result<Outcome, MediaError> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .failure(.storage(operation: "open upload to clean", errno: errno)) }
        defer { close(fd) }
        // Mapped, not read: only the plan is in memory, and the kept ranges go from the page cache to the new file.
        guard let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), mapped != MAP_FAILED else {
            return .failure(.storage(operation: "map upload to clean", errno: errno))
        }
        defer { munmap(mapped, size) }
        let input = UnsafeRawBufferPointer(start: mapped, count: size)
        let plan: CleaningPlan
        do {
            plan = try MetadataCleaner.plan(input, format: format)
        } catch {
            return .success(.uncleanable(error))
        }
        if plan.isUnchanged { return .success(.alreadyClean) }

        let cleanPath = path + ".clean"
        let out = open(cleanPath, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0o640)
        guard out >= 0 else { return .failure(.storage(operation: "create cleaned file", errno: errno)) }
        var hasher = SHA256()
        var failed: Int32 = 0
        plan.write(from: input) { (bytes: UnsafeRawBufferPointer) in
            guard failed == 0 else { return }
            failed = writer.write(fd: out, bytes: bytes)
            hasher.update(bufferPointer: bytes)
        }
        close(out)
        if failed == 0, rename(cleanPath, path) != 0 { failed = errno }
        guard failed == 0 else {
            unlink(cleanPath)
            return .failure(.storage(operation: "write cleaned file", errno: failed))
        }
        return .success(.cleaned(hash: FileHashing.hex(hasher.finalize()), size: plan.outputSize, removed: plan.removed))
    }
}
