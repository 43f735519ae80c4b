import ChatProtocol
import ChatStore
import Crypto
import Logging
import NIOCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Uploads in progress: who holds each one, the per-user limits (uploads in flight, daily bytes), the resume
/// window after a dropped connection or a restart, and the expiry of interrupted uploads. Their bytes stream into
/// the spool; the catalog records them so they survive a restart.
final class UploadRegistry: Sendable {
    let limits: MediaLimits
    let catalog: any MediaCatalog
    let spool: UploadSpool
    let writer: any MediaFileWriter
    let logger: Logger
    private let uploads = Mutex<Registry>(Registry())

    private struct Registry {
        var byId: [String: Upload] = [:]
        var nextClaim: UInt64 = 1

        mutating func claim() -> UInt64 {
            defer { nextClaim += 1 }
            return nextClaim
        }
    }

    init(limits: MediaLimits, catalog: any MediaCatalog, spool: UploadSpool, writer: any MediaFileWriter, logger: Logger) {
        self.limits = limits
        self.catalog = catalog
        self.spool = spool
        self.writer = writer
        self.logger = logger
    }

    var count: Int { uploads.withLock { $0.byId.count } }

    func begin(user: String, name: String, declaredSize: Int?, declaredSHA256: String?) async throws(MediaError) -> UploadPosition {
        if let size = declaredSize {
            guard size >= 0 else { throw .invalid("field \"size\" must not be negative") }
            guard size > 0 else { throw .empty }
            guard size <= limits.maxUploadBytes else { throw .tooLarge(size: size, limit: limits.maxUploadBytes) }
        }
        if let hash = declaredSHA256, !Hashes.isValidSHA256(hash) {
            throw .invalid("field \"sha256\" must be 64 hexadecimal digits")
        }
        let allowance = try await allowance(for: user, declaredSize: declaredSize, excluding: nil)
        let id = UploadIds.make()
        let record = UploadRecord(id: id, username: user, name: FileNames.sanitize(name), declaredSize: declaredSize,
                                  declaredSHA256: declaredSHA256.map(Hashes.normalized), createdAt: epochMilliseconds())
        let fd = try await spool.create(upload: id)
        let upload = Upload(record: record, path: spool.path(upload: id), allowance: allowance, fd: fd, hasher: SHA256(), offset: 0)
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

    func resume(user: String, uploadId: String) async throws(MediaError) -> UploadPosition {
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
            await spool.remove(upload: uploadId)
            throw MediaError.unknownUpload(id: uploadId, reason: "its resume window has passed; begin again")
        }
        let reopened = try await spool.reopen(upload: uploadId)
        let allowance: Upload.Allowance
        do {
            allowance = try await self.allowance(for: user, declaredSize: record.declaredSize, excluding: uploadId)
        } catch {
            close(reopened.fd)
            throw error
        }
        let upload = Upload(record: record, path: spool.path(upload: uploadId), allowance: allowance, fd: reopened.fd,
                            hasher: reopened.hasher.hasher, offset: reopened.offset)
        let claim: UInt64? = uploads.withLock { registry in
            guard registry.byId[uploadId] == nil else { return nil }
            registry.byId[uploadId] = upload
            let claim = registry.claim()
            upload.state.withLock { $0.claim = claim }
            return claim
        }
        guard let claim else {
            close(reopened.fd)
            throw notFound
        }
        return UploadPosition(handle: UploadHandle(id: uploadId, user: user, claim: claim), offset: reopened.offset,
                              declaredSize: record.declaredSize)
    }

    /// The upload `handle` names, if it is in progress for its user.
    func lookup(_ handle: UploadHandle) -> Upload? {
        uploads.withLock { registry in registry.byId[handle.id].flatMap { $0.user == handle.user ? $0 : nil } }
    }

    func append(_ handle: UploadHandle, _ bytes: ByteBuffer) async throws(MediaError) -> Int {
        guard let upload = lookup(handle) else {
            throw .unknownUpload(id: handle.id, reason: "it is not in progress on this connection: send uploadBegin or uploadResume first")
        }
        let writer = self.writer
        do {
            return try await MediaWorkers.run({ upload.append(bytes, claim: handle.claim, writer: writer) }, stopped: .poolStopped)
        } catch {
            if case .unknownUpload = error { throw error }
            await discard(upload)
            throw error
        }
    }

    func cancel(user: String, uploadId: String) async throws(MediaError) {
        let upload = uploads.withLock { registry in registry.byId[uploadId].flatMap { $0.user == user ? $0 : nil } }
        guard let upload else {
            throw .unknownUpload(id: uploadId, reason: "it is not in progress")
        }
        await discard(upload)
    }

    func detach(_ handle: UploadHandle) async {
        guard let upload = uploads.withLock({ $0.byId[handle.id] }) else { return }
        let detached = upload.state.withLock { state -> Bool in
            guard state.claim == handle.claim, !state.finishing else { return false }
            state.attached = false
            state.lastActivity = .now
            return true
        }
        if detached { try? await catalog.touchUpload(id: handle.id) }
    }

    func sweep() async {
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
            await spool.remove(upload: row.id)
            try? await catalog.deleteReceivingUpload(id: row.id)
        }
    }

    func recover() async throws(MediaError) {
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
        let removed = try await spool.removeAll(keeping: keep)
        if removed > 0 { logger.notice("removed leftover temporary media files", metadata: ["count": "\(removed)"]) }
    }

    /// A finished upload leaves the registry (its record is done).
    func finished(_ upload: Upload) {
        _ = uploads.withLock { $0.byId.removeValue(forKey: upload.id) }
    }

    /// Forgets a sealed upload whose store failed, keeping its temporary file and record: a resume finds it as after a
    /// restart (the file is hashed again) within the resume window, which starts now.
    func suspend(_ upload: Upload) async {
        uploads.withLock { registry in
            if registry.byId[upload.id] === upload { registry.byId.removeValue(forKey: upload.id) }
        }
        upload.closeFile()
        try? await catalog.touchUpload(id: upload.id)
    }

    /// Forgets an upload and removes its temporary file and record.
    func discard(_ upload: Upload) async {
        uploads.withLock { registry in
            if registry.byId[upload.id] === upload { registry.byId.removeValue(forKey: upload.id) }
        }
        await spool.discard(upload)
        do {
            try await catalog.deleteReceivingUpload(id: upload.id)
        } catch {
            logger.warning("could not delete an upload record; start-up will", metadata: ["upload": "\(upload.id)", "error": "\(error)"])
        }
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

    static func startOfUTCDay(_ now: Int64 = epochMilliseconds()) -> Int64 {
        now - now % 86_400_000
    }
}
