import ChatProtocol
import ChatStore
import Crypto
import Logging
import NIOCore
import NIOPosix
import Synchronization
import Thumbnailer
#if canImport(Glibc)
import Glibc
#endif

/// Media limits; `chat-server` flags set them and `welcome` tells them to clients.
public struct MediaLimits: Sendable {
    /// Largest file accepted.
    public var maxUploadBytes = 100 << 20
    /// Uploads a user may have in progress at once (interrupted ones count until they expire).
    public var maxUploadsInFlight = 4
    /// Bytes a user may upload per UTC day.
    public var bytesPerDay = 2 << 30
    /// How long an interrupted upload may be resumed; after that its temporary file is removed.
    public var resumeWindow: Duration = .seconds(600)
    /// Recommended binary frame size for WebSocket uploads.
    public var chunkSize = 512 * 1024
    /// A progress acknowledgement is sent each time this many more bytes are written.
    public var progressInterval = 1 << 20

    public init() {}
}

/// The right to write to one upload, held by one connection (or HTTP request) at a time. A resume from another
/// connection takes the upload over; the old handle stops working.
public struct UploadHandle: Sendable, Hashable {
    public let id: String
    public let user: String
    let claim: UInt64
}

/// Where to continue an upload.
public struct UploadPosition: Sendable, Equatable {
    public var handle: UploadHandle
    public var offset: Int
    /// The size announced at `begin`, if any: a resumed upload is acknowledged at its end by it, as a new one is.
    public var declaredSize: Int?
}

/// A finished upload.
public struct UploadOutcome: Sendable, Equatable {
    public var uploadId: String
    public var attachment: Attachment
    /// The bytes were already stored (by anyone): nothing new was written.
    public var duplicate: Bool
}

/// The content-addressed media store.
///
/// Files: `blobs/sha256/ab/cd/<hex>` (the bytes, named by their SHA-256), `thumbs/ab/cd/<hex>-<size>.<ext>`
/// (thumbnails, made once per blob), `tmp/` (uploads in progress as `<upload id>.part`, thumbnails being written).
/// Everything is written to `tmp/` first, fsynced and renamed into place, then the directory is fsynced, so a crash
/// at any point leaves no partial blob visible; start-up removes what a crash left in `tmp/`.
///
/// Hashing, writing, sniffing and thumbnailing run on the store's own thread pool (one thread per core), never on
/// NIO event loops or the Swift cooperative pool: a large upload does not slow anyone's chat, and at most one job per
/// core runs at once.
public final class MediaStore: Sendable {
    public let directory: String
    public let layout: MediaLayout
    public let limits: MediaLimits
    let catalog: MediaCatalog
    let sniffer: MagicSniffer
    let writer: any MediaFileWriter
    let thumbnailer = Thumbnailer()
    let logger: Logger
    private let uploads = Mutex<Registry>(Registry())
    private let hashLocks = HashLocks()

    private struct Registry {
        var byId: [String: Upload] = [:]
        var nextClaim: UInt64 = 1

        mutating func claim() -> UInt64 {
            defer { nextClaim += 1 }
            return nextClaim
        }
    }

    /// Blocking file and CPU work. Shared by every store in the process so the bound holds process-wide.
    static let pool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: max(2, System.coreCount))
        pool.start()
        return pool
    }()

    public init(directory: String, database: ChatDatabase, limits: MediaLimits = MediaLimits(),
                writer: any MediaFileWriter = POSIXFileWriter(), logger: Logger) throws(MediaError) {
        layout = MediaLayout(directory: directory)
        self.directory = layout.directory
        self.limits = limits
        self.catalog = MediaCatalog(database: database)
        self.writer = writer
        self.logger = logger
        sniffer = try MagicSniffer()
        for sub in ["blobs/sha256", "thumbs", "tmp"] {
            let (error, _) = POSIX.makeDirectories(self.directory + "/" + sub)
            if error != 0 { throw .storage(operation: "create \(self.directory)/\(sub)", errno: error) }
        }
    }

    // MARK: Paths

    public func blobPath(_ hash: String) -> String { layout.blobPath(hash) }

    public func thumbnailPath(_ hash: String, size: String, type: String) -> String {
        layout.thumbnailPath(hash, size: size, type: type)
    }

    var temporaryDirectory: String { layout.temporaryDirectory }

    func temporaryPath(upload id: String) -> String { layout.temporaryPath(upload: id) }

    // MARK: Upload

    /// Starts an upload: checks the limits (refusing at once what is known to be over them), creates the temporary
    /// file and records the upload so it can be resumed or cleaned up after a crash.
    public func begin(user: String, name: String, declaredSize: Int?, declaredSHA256: String?) async throws(MediaError) -> UploadPosition {
        if let size = declaredSize {
            guard size >= 0 else { throw .invalid("field \"size\" must not be negative") }
            guard size > 0 else { throw .empty }
            guard size <= limits.maxUploadBytes else { throw .tooLarge(size: size, limit: limits.maxUploadBytes) }
        }
        if let hash = declaredSHA256, !Hashes.isValidSHA256(hash) {
            throw .invalid("field \"sha256\" must be 64 hexadecimal digits")
        }
        let allowance = try await allowance(for: user, declaredSize: declaredSize, excluding: nil)
        let id = Self.makeUploadId()
        let now = epochMilliseconds()
        let record = UploadRecord(id: id, username: user, name: FileNames.sanitize(name), declaredSize: declaredSize,
                                  declaredSHA256: declaredSHA256.map(Hashes.normalized), createdAt: now)
        let path = temporaryPath(upload: id)
        let fd = try await run { () -> Result<Int32, MediaError> in
            let fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o640)
            return fd >= 0 ? .success(fd) : .failure(.storage(operation: "create temporary file", errno: errno))
        }
        let upload = Upload(record: record, path: path, allowance: allowance, fd: fd, hasher: SHA256(), offset: 0)
        do {
            try await catalog.insertUpload(record)
        } catch {
            await discard(upload)
            throw .wrap(error)
        }
        let claim: UInt64? = uploads.withLock { registry in
            guard registry.byId.values.count(where: { $0.user == user }) < limits.maxUploadsInFlight else { return nil }
            registry.byId[id] = upload
            let claim = registry.claim()
            upload.state.withLock { $0.claim = claim }
            return claim
        }
        guard let claim else {
            await discard(upload)
            throw .tooManyUploads(limit: limits.maxUploadsInFlight)
        }
        logger.debug("upload begun", metadata: ["upload": "\(id)", "user": "\(user)", "size": "\(declaredSize.map(String.init) ?? "?")"])
        return UploadPosition(handle: UploadHandle(id: id, user: user, claim: claim), offset: 0, declaredSize: declaredSize)
    }

    /// Continues an upload of `user` from the offset the server has: after a dropped connection (the upload is still
    /// in memory) or after a server restart (the temporary file is hashed again).
    public func resume(user: String, uploadId: String) async throws(MediaError) -> UploadPosition {
        let notFound = MediaError.unknownUpload(id: uploadId, reason: "it is not in progress (finished, cancelled, expired or never begun)")
        let live: UploadPosition?? = uploads.withLock { registry in
            guard let upload = registry.byId[uploadId] else { return .some(nil) }
            guard upload.user == user else { return .none }
            let claim = registry.claim()
            return upload.state.withLock { state -> UploadPosition?? in
                guard !state.finishing else { return .none }
                state.claim = claim
                state.attached = true
                state.lastActivity = .now
                return .some(UploadPosition(handle: UploadHandle(id: uploadId, user: user, claim: claim), offset: state.offset,
                                            declaredSize: upload.declaredSize))
            }
        }
        switch live {
        case .none:
            throw notFound
        case .some(let found?):
            return found
        case .some(nil):
            break
        }
        // Not in memory: an upload from before a restart, if still within its window.
        let record: UploadRecord?
        do { record = try await catalog.receivingUpload(id: uploadId) } catch { throw .wrap(error) }
        guard let record, record.username == user else { throw notFound }
        guard epochMilliseconds() - record.updatedAt <= limits.resumeWindow.inMilliseconds else {
            try? await catalog.deleteReceivingUpload(id: uploadId)
            let path = temporaryPath(upload: uploadId)
            try? await run { () -> Result<Void, MediaError> in unlink(path); return .success(()) }
            throw MediaError.unknownUpload(id: uploadId, reason: "its resume window has passed; begin again")
        }
        let path = temporaryPath(upload: uploadId)
        let reopened = try await run { () -> Result<(Int32, SendableHasher, Int), MediaError> in
            let fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC)
            guard fd >= 0 else { return .failure(.storage(operation: "reopen temporary file", errno: errno)) }
            var hasher = SHA256()
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            switch FileHashing.update(&hasher, from: fd, buffer: &buffer) {
            case .success(let total):
                return .success((fd, SendableHasher(hasher: hasher), total))
            case .failure(let error):
                close(fd)
                return .failure(.storage(operation: "read temporary file", errno: error.code))
            }
        }
        let allowance: Upload.Allowance
        do {
            allowance = try await self.allowance(for: user, declaredSize: record.declaredSize, excluding: uploadId)
        } catch {
            close(reopened.0)
            throw error
        }
        let upload = Upload(record: record, path: path, allowance: allowance, fd: reopened.0, hasher: reopened.1.hasher, offset: reopened.2)
        let claim: UInt64? = uploads.withLock { registry in
            guard registry.byId[uploadId] == nil else { return nil }
            registry.byId[uploadId] = upload
            let claim = registry.claim()
            upload.state.withLock { $0.claim = claim }
            return claim
        }
        guard let claim else {
            close(reopened.0)
            throw notFound
        }
        return UploadPosition(handle: UploadHandle(id: uploadId, user: user, claim: claim), offset: reopened.2,
                              declaredSize: record.declaredSize)
    }

    /// Appends bytes (hashing them on the way). Returns the new offset. Any failure but a lost claim discards the
    /// upload.
    public func append(_ handle: UploadHandle, _ bytes: ByteBuffer) async throws(MediaError) -> Int {
        guard let upload = lookup(handle) else {
            throw .unknownUpload(id: handle.id, reason: "it is not in progress on this connection: send uploadBegin or uploadResume first")
        }
        let writer = self.writer
        do {
            return try await run { upload.append(bytes, claim: handle.claim, writer: writer) }
        } catch {
            if case .unknownUpload = error { throw error }
            await discard(upload)
            throw error
        }
    }

    /// Ends an upload: checks size and hash, sniffs the type, moves the bytes into the store (unless they are there
    /// already), makes thumbnails of images and records the blob. Returns once all of that is durable.
    public func finish(_ handle: UploadHandle) async throws(MediaError) -> UploadOutcome {
        guard let upload = lookup(handle) else {
            throw .unknownUpload(id: handle.id, reason: "it is not in progress on this connection")
        }
        do throws(MediaError) {
            let (hash, size) = try await run { upload.seal(claim: handle.claim) }
            if let declared = upload.declaredSHA256, declared != hash {
                throw MediaError.hashMismatch(declared: declared, actual: hash)
            }
            let sniffer = self.sniffer
            let path = upload.path
            let type = try await run { () -> Result<String, MediaError> in
                let (error, prefix) = POSIX.readPrefix(path, count: MagicSniffer.prefixBytes)
                guard error == 0 else { return .failure(.storage(operation: "read temporary file", errno: error)) }
                return .success(sniffer.mimeType(of: prefix))
            }
            let mismatch = FileNames.extensionMismatch(name: upload.name, mimeType: type)
            let (blob, duplicate) = try await store(upload: upload, hash: hash, size: size, type: type, nameMismatch: mismatch)
            _ = uploads.withLock { $0.byId.removeValue(forKey: upload.id) }
            logger.debug("upload stored", metadata: ["upload": "\(upload.id)", "sha256": "\(hash)", "type": "\(type)",
                                                     "size": "\(size)", "duplicate": "\(duplicate)"])
            return UploadOutcome(uploadId: upload.id, attachment: blob.attachment(name: upload.name, nameMismatch: mismatch),
                                 duplicate: duplicate)
        } catch {
            if case .unknownUpload = error { throw error }
            await discard(upload)
            throw error
        }
    }

    /// Abandons an upload of `user` now: the temporary file and the record go.
    public func cancel(user: String, uploadId: String) async throws(MediaError) {
        let upload = uploads.withLock { registry in registry.byId[uploadId].flatMap { $0.user == user ? $0 : nil } }
        guard let upload else {
            throw .unknownUpload(id: uploadId, reason: "it is not in progress")
        }
        await discard(upload)
    }

    /// The connection holding `handle` ended: the upload waits `resumeWindow` for a resume.
    public func detach(_ handle: UploadHandle) async {
        guard let upload = uploads.withLock({ $0.byId[handle.id] }) else { return }
        let detached = upload.state.withLock { state -> Bool in
            guard state.claim == handle.claim, !state.finishing else { return false }
            state.attached = false
            state.lastActivity = .now
            return true
        }
        if detached { try? await catalog.touchUpload(id: handle.id) }
    }

    /// Removes interrupted uploads whose resume window has passed, in memory and from before a restart.
    public func sweep() async {
        let window = limits.resumeWindow
        let now = ContinuousClock.now
        let expired = uploads.withLock { registry in
            registry.byId.values.filter { upload in
                upload.state.withLock { !$0.attached && !$0.finishing && now - $0.lastActivity > window }
            }
        }
        for upload in expired {
            logger.info("interrupted upload expired", metadata: ["upload": "\(upload.id)", "user": "\(upload.user)"])
            await discard(upload)
        }
        let live = uploads.withLock { Set($0.byId.keys) }
        guard let rows = try? await catalog.receivingUploads() else { return }
        let cutoff = epochMilliseconds() - window.inMilliseconds
        for row in rows where !live.contains(row.id) && row.updatedAt < cutoff {
            let path = temporaryPath(upload: row.id)
            try? await run { () -> Result<Void, MediaError> in unlink(path); return .success(()) }
            try? await catalog.deleteReceivingUpload(id: row.id)
        }
    }

    /// Start-up clean-up after a crash: removes from `tmp/` everything that is not an upload still within its
    /// resume window, and the records of expired uploads.
    public func recover() async throws(MediaError) {
        let rows: [UploadRecord]
        do { rows = try await catalog.receivingUploads() } catch { throw .wrap(error) }
        let cutoff = epochMilliseconds() - limits.resumeWindow.inMilliseconds
        var keep: Set<String> = []
        for row in rows {
            if row.updatedAt >= cutoff {
                keep.insert("\(row.id).part")
            } else {
                try? await catalog.deleteReceivingUpload(id: row.id)
            }
        }
        let directory = temporaryDirectory
        let keepNames = keep
        let removed = try await run { () -> Result<Int, MediaError> in
            guard let dir = opendir(directory) else { return .failure(.storage(operation: "list \(directory)", errno: errno)) }
            defer { closedir(dir) }
            var names: [String] = []
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
                }
                if name != "." && name != ".." && !keepNames.contains(name) { names.append(name) }
            }
            for name in names { unlink(directory + "/" + name) }
            return .success(names.count)
        }
        if removed > 0 { logger.notice("removed leftover temporary media files", metadata: ["count": "\(removed)"]) }
    }

    /// Uploads in progress (tests, metrics).
    public var uploadsInProgress: Int { uploads.withLock { $0.byId.count } }

    // MARK: Internals

    private func lookup(_ handle: UploadHandle) -> Upload? {
        uploads.withLock { registry in registry.byId[handle.id].flatMap { $0.user == handle.user ? $0 : nil } }
    }

    /// How many bytes this upload may have: the per-file limit, or less when the daily allowance is nearly used.
    private func allowance(for user: String, declaredSize: Int?, excluding: String?) async throws(MediaError) -> Upload.Allowance {
        let (inFlight, reserved) = uploads.withLock { registry -> (Int, Int) in
            let mine = registry.byId.values.filter { $0.user == user && $0.id != excluding }
            return (mine.count, mine.reduce(0) { $0 + $1.reservedBytes })
        }
        guard inFlight < limits.maxUploadsInFlight else { throw .tooManyUploads(limit: limits.maxUploadsInFlight) }
        let usedToday: Int
        do {
            usedToday = try await catalog.bytesUploaded(by: user, since: Self.startOfUTCDay()) + reserved
        } catch {
            throw .wrap(error)
        }
        let remaining = limits.bytesPerDay - usedToday
        let requested = declaredSize ?? 1
        guard requested <= remaining else {
            throw .dailyAllowance(used: usedToday, requested: requested, limit: limits.bytesPerDay)
        }
        return remaining < limits.maxUploadBytes
            ? Upload.Allowance(bytes: remaining, error: .dailyAllowance(used: usedToday, requested: remaining + 1, limit: limits.bytesPerDay))
            : Upload.Allowance(bytes: limits.maxUploadBytes, error: .tooLarge(size: limits.maxUploadBytes + 1, limit: limits.maxUploadBytes))
    }

    /// Moves the sealed upload's bytes into place (or drops them when the blob exists), makes thumbnails and records
    /// the upload, one hash at a time so identical uploads finishing together make one blob and one set of thumbnails.
    private func store(upload: Upload, hash: String, size: Int, type: String, nameMismatch: Bool) async throws(MediaError)
        -> (BlobRecord, duplicate: Bool) {
        await hashLocks.lock(hash)
        do {
            let result = try await storeLocked(upload: upload, hash: hash, size: size, type: type, nameMismatch: nameMismatch)
            await hashLocks.unlock(hash)
            return result
        } catch {
            await hashLocks.unlock(hash)
            throw error
        }
    }

    private func storeLocked(upload: Upload, hash: String, size: Int, type: String, nameMismatch: Bool) async throws(MediaError)
        -> (BlobRecord, duplicate: Bool) {
        // Touch before trusting existing bytes: a blob pruned a moment ago reads as absent here, and then this
        // upload's bytes go into place again (see MediaCatalog's deletion protocol).
        let existing: BlobRecord?
        do { existing = try await catalog.touchPresentBlob(hash: hash) } catch { throw .wrap(error) }
        let temporary = upload.path
        let destination = blobPath(hash)
        let writer = self.writer
        let duplicate = try await run { () -> Result<Bool, MediaError> in
            if existing != nil, POSIX.exists(destination) {
                unlink(temporary)
                return .success(true)
            }
            // No present blob (new, pruned or quarantined), or its file went missing: these bytes, whose hash was
            // just computed, replace whatever is at the destination, durable before they are visible there.
            let syncError = POSIX.syncFile(temporary, with: writer)
            guard syncError == 0 else { return .failure(.storage(operation: "fsync", errno: syncError)) }
            let parent = POSIX.parent(of: destination)
            let (mkdirError, created) = POSIX.makeDirectories(parent)
            guard mkdirError == 0 else { return .failure(.storage(operation: "create blob directory", errno: mkdirError)) }
            guard rename(temporary, destination) == 0 else { return .failure(.storage(operation: "rename into the store", errno: errno)) }
            // The rename (and any new fan-out directory) is durable only once the directories holding them are synced.
            for directory in [parent] + created.map(POSIX.parent(of:)) {
                let error = POSIX.syncDirectory(directory)
                guard error == 0 else { return .failure(.storage(operation: "fsync directory", errno: error)) }
            }
            return .success(false)
        }
        var blob = existing ?? BlobRecord(hash: hash, size: size, mimeType: type)
        if existing == nil {
            let plain = blob
            blob = try await run { self.addThumbnails(to: plain) }
        }
        do {
            try await catalog.completeUpload(id: upload.id, blob: blob, nameMismatch: nameMismatch)
        } catch {
            throw .wrap(error)
        }
        return (blob, duplicate)
    }

    /// The sniffed types the thumbnailer reads (libmagic says image/heic for HEVC-coded HEIF, image/heif for others).
    static let thumbnailedTypes: Set<String> = ["image/jpeg", "image/png", "image/gif", "image/webp", "image/heic", "image/heif"]

    /// Dimensions and thumbnails of image blobs (JPEG, PNG, GIF and WebP first frames, HEIC/HEIF). Runs on the pool.
    /// A thumbnail already on disk (from an earlier attempt) is reused, not made again. An image the thumbnailer
    /// refuses just gets none.
    private func addThumbnails(to blob: BlobRecord) -> Result<BlobRecord, MediaError> {
        guard Self.thumbnailedTypes.contains(blob.mimeType) else { return .success(blob) }
        var blob = blob
        let path = blobPath(blob.hash)
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .failure(.storage(operation: "open blob", errno: errno)) }
        defer { close(fd) }
        // Mapped, not read: the image's bytes stay in the page cache instead of the heap.
        guard let mapped = mmap(nil, blob.size, PROT_READ, MAP_PRIVATE, fd, 0), mapped != MAP_FAILED else {
            return .failure(.storage(operation: "map blob", errno: errno))
        }
        defer { munmap(mapped, blob.size) }
        let bytes = UnsafeRawBufferPointer(start: mapped, count: blob.size)
        let thumbnails: [ThumbnailSpec: Thumbnail]
        do {
            let info = try thumbnailer.probe(bytes)
            blob.width = info.width
            blob.height = info.height
            thumbnails = try thumbnailer.makeThumbnails(from: bytes, specs: ThumbnailSpec.defaults)
        } catch {
            logger.info("no thumbnails for an image", metadata: ["sha256": "\(blob.hash)", "reason": "\(error)"])
            return .success(blob)
        }
        var made: [ThumbnailInfo] = []
        for spec in ThumbnailSpec.defaults {
            guard let thumbnail = thumbnails[spec] else { continue }
            let destination = thumbnailPath(blob.hash, size: spec.description, type: thumbnail.mimeType)
            if !POSIX.exists(destination) {
                let (mkdirError, _) = POSIX.makeDirectories(POSIX.parent(of: destination))
                guard mkdirError == 0 else { return .failure(.storage(operation: "create thumbnail directory", errno: mkdirError)) }
                let temporary = "\(temporaryDirectory)/thumb-\(Self.makeUploadId()).tmp"
                if let failure = POSIX.writeAtomically(thumbnail.bytes, to: destination, temporary: temporary, writer: writer) {
                    return .failure(.storage(operation: failure.operation, errno: failure.errno))
                }
            }
            made.append(ThumbnailInfo(size: spec.description, type: thumbnail.mimeType, width: thumbnail.width, height: thumbnail.height))
        }
        blob.thumbnails = made
        return .success(blob)
    }

    /// Forgets an upload and removes its temporary file and record.
    private func discard(_ upload: Upload) async {
        uploads.withLock { registry in
            if registry.byId[upload.id] === upload { registry.byId.removeValue(forKey: upload.id) }
        }
        try? await run { () -> Result<Void, MediaError> in
            upload.closeFile()
            unlink(upload.path)
            return .success(())
        }
        do {
            try await catalog.deleteReceivingUpload(id: upload.id)
        } catch {
            logger.warning("could not delete an upload record; start-up will", metadata: ["upload": "\(upload.id)", "error": "\(error)"])
        }
    }

    /// Runs blocking file or CPU work on the media pool (one thread per core, shared process-wide), for callers
    /// outside the store such as `chat-admin`'s maintenance commands.
    public static func runBlocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await pool.runIfActive(body)
    }

    /// Runs blocking work on the store's pool.
    func run<T: Sendable>(_ body: @escaping @Sendable () -> Result<T, MediaError>) async throws(MediaError) -> T {
        let result: Result<T, MediaError>
        do {
            result = try await Self.pool.runIfActive(body)
        } catch {
            throw .storage(operation: "worker pool", errno: ECANCELED)
        }
        return try result.get()
    }

    static func makeUploadId() -> String {
        var generator = SystemRandomNumberGenerator()
        return "u" + (0..<16).map { _ in hexByte(UInt8.random(in: 0...255, using: &generator)) }.joined()
    }

    static func hexByte(_ byte: UInt8) -> String {
        let digits = Array("0123456789abcdef".utf8)
        return String(decoding: [digits[Int(byte >> 4)], digits[Int(byte & 0xF)]], as: UTF8.self)
    }

    static func startOfUTCDay(_ now: Int64 = epochMilliseconds()) -> Int64 {
        now - now % 86_400_000
    }
}

/// One upload in progress. Its file, hasher and offset change only under the lock, on the store's pool.
final class Upload: Sendable {
    struct Allowance: Sendable {
        var bytes: Int
        /// What to answer when the bytes go past `bytes`.
        var error: MediaError
    }

    // Only touched under `state`'s lock; unchecked because swift-crypto's SHA256 is not marked Sendable.
    struct State: @unchecked Sendable {
        var fd: Int32
        var hasher: SHA256
        var offset: Int
        var claim: UInt64 = 0
        var attached = true
        var finishing = false
        var lastActivity = ContinuousClock.now
    }

    let id: String
    let user: String
    let name: String
    let declaredSize: Int?
    let declaredSHA256: String?
    let path: String
    let allowance: Allowance
    let state: Mutex<State>

    init(record: UploadRecord, path: String, allowance: Allowance, fd: Int32, hasher: SHA256, offset: Int) {
        id = record.id
        user = record.username
        name = record.name
        declaredSize = record.declaredSize
        declaredSHA256 = record.declaredSHA256
        self.path = path
        self.allowance = allowance
        state = Mutex(State(fd: fd, hasher: hasher, offset: offset))
    }

    /// Bytes this upload counts against the daily allowance while in progress.
    var reservedBytes: Int {
        max(declaredSize ?? 0, state.withLock { $0.offset })
    }

    func append(_ bytes: ByteBuffer, claim: UInt64, writer: any MediaFileWriter) -> Result<Int, MediaError> {
        state.withLock { state in
            guard state.claim == claim, !state.finishing, state.fd >= 0 else {
                return .failure(.unknownUpload(id: id, reason: "it was resumed on another connection or is finishing"))
            }
            let end = state.offset + bytes.readableBytes
            if let declared = declaredSize, end > declared { return .failure(.moreThanDeclared(declared: declared)) }
            if end > allowance.bytes { return .failure(allowance.error) }
            let fd = state.fd
            let error = bytes.withUnsafeReadableBytes { writer.write(fd: fd, bytes: $0) }
            guard error == 0 else { return .failure(.storage(operation: "write", errno: error)) }
            bytes.withUnsafeReadableBytes { state.hasher.update(bufferPointer: $0) }
            state.offset = end
            state.lastActivity = .now
            return .success(end)
        }
    }

    /// No more bytes: checks the size, closes the file, returns the hash (lowercase hex) and size.
    func seal(claim: UInt64) -> Result<(String, Int), MediaError> {
        state.withLock { state in
            guard state.claim == claim, !state.finishing, state.fd >= 0 else {
                return .failure(.unknownUpload(id: id, reason: "it was resumed on another connection or is finishing"))
            }
            guard state.offset > 0 else { return .failure(.empty) }
            if let declared = declaredSize, state.offset != declared {
                return .failure(.incomplete(declared: declared, received: state.offset))
            }
            state.finishing = true
            // A fresh modification time: the file keeps it when renamed into `blobs/`, and maintenance (gc, verify)
            // spares files younger than its grace period while their record is being written. No fsync yet: bytes
            // the store already holds are dropped, and only bytes about to be renamed into it need to be durable.
            futimens(state.fd, nil)
            close(state.fd)
            state.fd = -1
            let hash = FileHashing.hex(state.hasher.finalize())
            return .success((hash, state.offset))
        }
    }

    func closeFile() {
        state.withLock { state in
            if state.fd >= 0 { close(state.fd) }
            state.fd = -1
            state.finishing = true
        }
    }
}

/// Carries a hasher from the pool thread that rebuilt it. SHA256 is a copy-on-write value and this copy is not
/// shared, so handing it over is safe; swift-crypto just does not mark it Sendable.
struct SendableHasher: @unchecked Sendable {
    var hasher: SHA256
}

/// One finisher per hash at a time.
actor HashLocks {
    private var held: Set<String> = []
    private var waiting: [String: [CheckedContinuation<Void, Never>]] = [:]

    func lock(_ hash: String) async {
        guard held.contains(hash) else {
            held.insert(hash)
            return
        }
        await withCheckedContinuation { waiting[hash, default: []].append($0) }
    }

    func unlock(_ hash: String) {
        if var queue = waiting[hash], !queue.isEmpty {
            let next = queue.removeFirst()
            waiting[hash] = queue.isEmpty ? nil : queue
            next.resume()  // ownership passes to the next waiter
        } else {
            held.remove(hash)
        }
    }
}

