import ChatProtocol
import ChatStore
import Logging
import NIOCore

/// The media store: streamed, hashed uploads stored once by content hash, with thumbnails of images.
///
/// The work is split among owners: `UploadRegistry` (uploads in progress, limits, resume), the spool (each upload's
/// local temporary file, hashed while it is written), `BlobStorage` (where finished bytes and thumbnails live: the
/// local content-addressed directory of `MediaLayout` by default) and `ThumbnailService`. This type finishes uploads
/// across them: check, sniff, store once per hash, thumbnail, record.
///
/// Bytes become visible only once durable: the storage syncs a finished file before putting it in place, so a crash
/// at any point leaves no partial blob visible; start-up removes what a crash left in the spool. Hashing, writing,
/// sniffing and thumbnailing run on the store's own thread pool (one thread per core), never on NIO event loops or the
/// Swift cooperative pool: a large upload does not slow anyone's chat, and at most one job per core runs at once.
public final class MediaStore: Sendable {
    /// The local directory: the spool (`tmp/`) and, with the default storage, the blobs.
    public let layout: MediaLayout
    public let limits: MediaLimits
    /// Where blobs and thumbnails are kept; the HTTP routes and maintenance read and remove through it.
    public let blobs: any BlobStorage
    let catalog: any MediaCatalog
    let registry: UploadRegistry
    let spool: UploadSpool
    let thumbnails: ThumbnailService
    let sniffer: MagicSniffer
    let logger: Logger
    private let hashLocks = HashLocks()

    /// A store keeping blobs in the local content-addressed directory `directory`.
    public convenience init(directory: String, catalog: any MediaCatalog, limits: MediaLimits = MediaLimits(),
                            writer: any MediaFileWriter = POSIXFileWriter(), logger: Logger) throws(MediaError) {
        let layout = MediaLayout(directory: directory)
        let storage = LocalBlobStorage(layout: layout, writer: writer)
        do {
            try storage.prepare()
        } catch {
            guard case .io(let operation, let path, let code) = error else { throw .stored(error) }
            throw .storage(operation: "\(operation) \(path)", errno: code)
        }
        try self.init(layout: layout, storage: storage, catalog: catalog, limits: limits, writer: writer, logger: logger)
    }

    /// A store spooling uploads under `layout`'s `tmp/` and keeping finished bytes in `storage`.
    public init(layout: MediaLayout, storage: any BlobStorage, catalog: any MediaCatalog, limits: MediaLimits = MediaLimits(),
                writer: any MediaFileWriter = POSIXFileWriter(), logger: Logger) throws(MediaError) {
        let (error, _) = POSIX.makeDirectories(layout.temporaryDirectory)
        if error != 0 { throw .storage(operation: "create \(layout.temporaryDirectory)", errno: error) }
        self.layout = layout
        self.limits = limits
        blobs = storage
        self.catalog = catalog
        spool = UploadSpool(layout: layout)
        registry = UploadRegistry(limits: limits, catalog: catalog, spool: spool, writer: writer, logger: logger)
        thumbnails = ThumbnailService(storage: storage, logger: logger)
        sniffer = try MagicSniffer()
        self.logger = logger
    }

    // MARK: Uploads

    /// Starts an upload: checks the limits (refusing at once what is known to be over them), creates the temporary
    /// file and records the upload so it can be resumed or cleaned up after a crash.
    public func begin(user: String, name: String, declaredSize: Int?, declaredSHA256: String?) async throws(MediaError) -> UploadPosition {
        try await registry.begin(user: user, name: name, declaredSize: declaredSize, declaredSHA256: declaredSHA256)
    }

    /// Continues an upload of `user` from the offset the server has: after a dropped connection (the upload is still
    /// in memory) or after a server restart (the temporary file is hashed again).
    public func resume(user: String, uploadId: String) async throws(MediaError) -> UploadPosition {
        try await registry.resume(user: user, uploadId: uploadId)
    }

    /// Appends bytes (hashing them on the way). Returns the new offset. Any failure but a lost claim discards the
    /// upload.
    public func append(_ handle: UploadHandle, _ bytes: ByteBuffer) async throws(MediaError) -> Int {
        try await registry.append(handle, bytes)
    }

    /// Ends an upload: checks size and hash, sniffs the type, puts the bytes into the storage (unless they are there
    /// already), makes thumbnails of images and records the blob. Returns once all of that is durable. When the
    /// store fails (`storeUnavailable`) the upload is kept for a resume if `resumable` (the WebSocket's
    /// `uploadResume`), and discarded otherwise (an HTTP client sends the file again).
    public func finish(_ handle: UploadHandle, resumable: Bool = true) async throws(MediaError) -> UploadOutcome {
        guard let upload = registry.lookup(handle) else {
            throw .unknownUpload(id: handle.id, reason: "it is not in progress on this connection")
        }
        do throws(MediaError) {
            var (hash, size) = try await MediaWorkers.run({ upload.seal(claim: handle.claim) }, stopped: .poolStopped)
            if let declared = upload.declaredSHA256, declared != hash {
                throw MediaError.hashMismatch(declared: declared, actual: hash)
            }
            let type = try await spool.sniffType(of: upload, with: sniffer)
            let mismatch = FileNames.extensionMismatch(name: upload.name, mimeType: type)
            // The declared hash checked what was sent; from here on the blob is what is kept.
            let metadataRemoved = try await removeMetadata(of: upload, hash: &hash, size: &size, type: type)
            let durationMs = try await Durations.milliseconds(of: upload.path, size: size, mimeType: type)
            let fresh = BlobRecord(hash: hash, size: size, mimeType: type, metadataRemoved: metadataRemoved, durationMs: durationMs)
            let (blob, duplicate) = try await store(upload: upload, fresh: fresh, nameMismatch: mismatch)
            registry.finished(upload)
            logger.debug("upload stored", metadata: ["upload": "\(upload.id)", "sha256": "\(hash)", "type": "\(type)",
                                                     "size": "\(size)", "duplicate": "\(duplicate)"])
            return UploadOutcome(uploadId: upload.id, attachment: blob.attachment(name: upload.name, nameMismatch: mismatch),
                                 duplicate: duplicate)
        } catch {
            if case .unknownUpload = error { throw error }
            if case .storeUnavailable(let failure) = error, resumable {
                // The bytes are fine and hashed; only the store failed. Keep them for a resume (or a retry).
                logger.warning("upload kept for a resume: the media store failed",
                               metadata: ["upload": "\(upload.id)", "cause": "\(failure)"])
                await registry.suspend(upload)
                throw error
            }
            await registry.discard(upload)
            throw error
        }
    }

    /// Abandons an upload of `user` now: the temporary file and the record go.
    public func cancel(user: String, uploadId: String) async throws(MediaError) {
        try await registry.cancel(user: user, uploadId: uploadId)
    }

    /// The connection holding `handle` ended: the upload waits `resumeWindow` for a resume.
    public func detach(_ handle: UploadHandle) async {
        await registry.detach(handle)
    }

    /// Removes interrupted uploads whose resume window has passed, in memory and from before a restart.
    public func sweep() async {
        await registry.sweep()
    }

    /// Start-up clean-up after a crash: removes from the spool everything that is not an upload still within its
    /// resume window, and the records of expired uploads.
    public func recover() async throws(MediaError) {
        try await registry.recover()
    }

    /// Uploads in progress (tests, metrics).
    public var uploadsInProgress: Int { registry.count }

    // MARK: Storing

    /// Removes private metadata from an image upload's file as the operator chose (`MediaLimits.imageMetadata`),
    /// updating `hash` and `size` when the bytes change. Returns the attachment's `metadataRemoved`.
    private func removeMetadata(of upload: Upload, hash: inout String, size: inout Int, type: String) async throws(MediaError) -> Bool? {
        switch try await MetadataRemoval.clean(path: upload.path, size: size, mimeType: type, policy: limits.imageMetadata,
                                               writer: registry.writer) {
        case .notApplicable:
            return nil
        case .alreadyClean:
            return true
        case .cleaned(let cleanedHash, let cleanedSize, let removed):
            logger.debug("image metadata removed", metadata: ["upload": "\(upload.id)", "sent": "\(hash)", "stored": "\(cleanedHash)",
                                                           "removed": "\(removed.map(\.rawValue).joined(separator: ","))"])
            hash = cleanedHash
            size = cleanedSize
            return true
        case .uncleanable(let reason):
            logger.notice("image stored with its metadata: it cannot be cleaned safely",
                          metadata: ["upload": "\(upload.id)", "sha256": "\(hash)", "reason": "\(reason)"])
            return false
        }
    }

    /// Puts the sealed upload's bytes in place (or drops them when the blob exists), makes thumbnails and records
    /// the upload, one hash at a time so identical uploads finishing together make one blob and one set of thumbnails.
    private func store(upload: Upload, fresh: BlobRecord, nameMismatch: Bool) async throws(MediaError) -> (BlobRecord, duplicate: Bool) {
        await hashLocks.lock(fresh.hash)
        do {
            let result = try await storeLocked(upload: upload, fresh: fresh, nameMismatch: nameMismatch)
            await hashLocks.unlock(fresh.hash)
            return result
        } catch {
            await hashLocks.unlock(fresh.hash)
            throw error
        }
    }

    /// `fresh` is the record of a blob new to the store: hash, size, type and what ingest found.
    private func storeLocked(upload: Upload, fresh: BlobRecord, nameMismatch: Bool) async throws(MediaError) -> (BlobRecord, duplicate: Bool) {
        let hash = fresh.hash
        // Touch before trusting existing bytes: a blob pruned a moment ago reads as absent here, and then this
        // upload's bytes go into place again (see MediaCatalog's deletion protocol).
        let existing: BlobRecord?
        do { existing = try await catalog.touchPresentBlob(hash: hash) } catch { throw .wrap(error) }
        var blob = existing ?? fresh
        let key: BlobKey
        let duplicate: Bool
        do throws(BlobStorageError) {
            key = try BlobKey(blob: hash)
            duplicate = existing == nil ? false : try await blobs.size(of: key) != nil
        } catch {
            throw .stored(error)
        }
        if duplicate {
            await spool.remove(upload: upload.id)
        } else {
            // No present blob (new, pruned or quarantined), or its bytes went missing: these bytes, whose hash was
            // just computed, replace whatever is stored, durable before they are visible. A new blob's thumbnails
            // come from the same local file first.
            if blobs.deletesAfterCommit { try await hold(hash, upload: upload.id) }
            if existing == nil {
                blob = try await thumbnails.addThumbnails(to: blob, from: upload.path)
            }
            do { try await blobs.put(key, temporaryFile: upload.path) } catch { throw .stored(error) }
        }
        do {
            try await catalog.completeUpload(id: upload.id, blob: blob, nameMismatch: nameMismatch)
        } catch {
            throw .wrap(error)
        }
        return (blob, duplicate)
    }

    /// Attempts of `hold`, 100 ms apart: a deleter holds a claim for the few requests one blob's objects take.
    static let holdAttempts = 50

    private func hold(_ hash: String, upload id: String) async throws(MediaError) {
        try await Self.hold(hash, upload: id, in: catalog)
    }

    /// Rule 3 of `PendingDeletion` (a storage that deletes after the commit): holds `hash` for upload `id` (a
    /// receiving upload row) before its bytes go into the store, so that no deletion claimed earlier can still remove
    /// them afterwards and none is claimed until the upload is recorded. While a deleter is at work on the hash,
    /// waits for it. Public for `chat-admin media strip-metadata`, which puts bytes the same way.
    public static func hold(_ hash: String, upload id: String, in catalog: any MediaCatalog) async throws(MediaError) {
        for attempt in 1...Self.holdAttempts {
            let now = epochMilliseconds()
            let held: Bool
            do {
                held = try await catalog.holdBlob(hash: hash, upload: id, staleBefore: now - PendingDeletion.lease.inMilliseconds, at: now)
            } catch {
                throw .wrap(error)
            }
            if held { return }
            if attempt < Self.holdAttempts { try? await Task.sleep(for: .milliseconds(100)) }
        }
        throw .storeUnavailable(BlobStoreFailure(StoreError.removalInProgress(hash: hash)))
    }
}
