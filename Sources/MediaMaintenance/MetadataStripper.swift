import ChatProtocol
import ChatStore
import Logging
import MediaPrivacy
import MediaStore
#if canImport(Glibc)
import Glibc
#endif

/// What `media strip-metadata` did (or, in a dry run, would do).
public struct StripReport: Sendable, Codable, Equatable {
    /// A blob whose private metadata went: the cleaned bytes are a new blob that its references now point at.
    public struct Cleaned: Sendable, Codable, Equatable {
        public var hash: String
        public var newHash: String
        public var type: String
        public var size: Int64
        public var newSize: Int64
        /// Message attachments moved to the new blob (in a dry run: attached to the old one).
        public var attachments: Int
        /// What was removed (`RemovedMetadata` names: gps, makerNote, xmp, ...).
        public var removed: [String]
        /// The old blob's bytes are gone. False when it was referenced again while it was being replaced: it stays
        /// until a later run moves that reference too.
        public var oldRemoved: Bool
    }

    /// A blob left as it is, and why.
    public struct Left: Sendable, Codable, Equatable {
        public var hash: String
        public var reason: String
    }

    public var dryRun: Bool
    public var cleaned: [Cleaned]
    /// Images that carried nothing to remove: now recorded as such (`metadataRemoved`).
    public var alreadyClean: [String]
    /// Images the cleaner cannot clean safely (malformed EXIF, truncated segments): stored as they are.
    public var uncleanable: [Left]
    /// Left for a later run: referenced while this one ran, removal of the new hash in progress, bytes missing or
    /// not matching their hash (`media verify` deals with those).
    public var skipped: [Left]
    /// Candidates referenced within the grace period, not looked at (a client may be attaching them right now).
    public var skippedRecent: Int
    /// Bytes of the cleaned blobs before and after.
    public var bytesBefore: Int64
    public var bytesAfter: Int64
    /// An object store: deletions of old blobs that could not be carried out now and wait for `media gc`.
    public var pendingDeletions: Int
    public var seconds: Double
}

/// `chat-admin media strip-metadata`: removes location and device data from JPEG and PNG blobs stored before ingest
/// did it (or while the server kept metadata), with the cleaner uploads use (`MetadataRemoval`).
///
/// For each present image blob not known to be clean and last referenced before the grace period:
/// 1. its bytes are copied to the local spool (checked against their hash) and cleaned there;
/// 2. the cleaned bytes go into the storage under their own hash as an upload's would: touch before trusting an
///    existing blob, hold the hash on an object store (`PendingDeletion` rule 3), thumbnails made from the file;
/// 3. one catalog transaction re-checks that the old blob is still unreferenced within the grace period, records the
///    new blob (`metadataRemoved`) and moves attachments and finished uploads to it (`replaceBlob`);
/// 4. the old blob is pruned through `BlobRemoval`, which re-checks "no attachment, not referenced within the grace
///    period" inside its own transaction, so a reference made between 3 and 4 keeps it for the next run.
/// Every step is idempotent: an interrupted run leaves either the old blob with its references (done again next
/// time), or a new blob already present (found by the touch), or an unreferenced old blob (removed next time).
public struct MetadataStripper: Sendable {
    let catalog: any MediaCatalog
    let storage: any BlobStorage
    let layout: MediaLayout
    let grace: Duration
    let logger: Logger

    /// `layout` is the local media directory: its `tmp/` holds the copies being cleaned (the server's spool, so a
    /// crash's leftovers are cleaned up as an upload's are).
    public init(catalog: any MediaCatalog, storage: any BlobStorage, layout: MediaLayout, grace: Duration = .seconds(900),
                logger: Logger) {
        self.catalog = catalog
        self.storage = storage
        self.layout = layout
        self.grace = grace
        self.logger = logger
    }

    static let cleanedTypes = Set(MetadataCleaner.Format.allCases.map(\.rawValue))

    /// `progress(blobsDone, blobsTotal)`.
    public func strip(dryRun: Bool, progress: (Int, Int) -> Void = { _, _ in }) async throws(MaintenanceError) -> StripReport {
        guard grace >= PruneCriteria.minimumGrace else {
            throw .invalidRequest("the grace period must be at least a minute: uploads in flight rely on it")
        }
        let started = ContinuousClock.now
        let cutoff = epochMilliseconds() - grace.inMilliseconds
        let unknown: [String: BlobRecord]
        let candidates: [PruneCandidate]
        do {
            let blobs = try await catalog.inventory().blobs.filter {
                $0.state == .present && Self.cleanedTypes.contains($0.mimeType) && $0.metadataRemoved != true
            }
            unknown = Dictionary(blobs.map { ($0.hash, $0) }, uniquingKeysWith: { first, _ in first })
            candidates = try await catalog.pruneCandidates(BlobSelection(referencedBefore: cutoff, type: "image/*"), maxTotal: nil)
                .candidates.filter { unknown[$0.hash] != nil }
        } catch {
            throw .wrap(error)
        }
        var report = StripReport(dryRun: dryRun, cleaned: [], alreadyClean: [], uncleanable: [], skipped: [],
                                 skippedRecent: unknown.count - candidates.count, bytesBefore: 0, bytesAfter: 0,
                                 pendingDeletions: 0, seconds: 0)
        do throws(MediaError) {
            try prepareSpool()
        } catch {
            throw .media(error)
        }
        for (index, candidate) in candidates.enumerated() {
            try await strip(candidate, dryRun: dryRun, cutoff: cutoff, into: &report)
            progress(index + 1, candidates.count)
        }
        if storage.deletesAfterCommit && !dryRun {
            do { report.pendingDeletions = try await catalog.pendingDeletions().count } catch { throw .wrap(error) }
        }
        report.seconds = (ContinuousClock.now - started).inSeconds
        return report
    }

    /// The spool holds the copies being cleaned, also in a dry run (with a bucket, the media directory may be new).
    private func prepareSpool() throws(MediaError) {
        for directory in [layout.directory, layout.temporaryDirectory] where mkdir(directory, 0o750) != 0 && errno != EEXIST {
            throw .storage(operation: "create \(directory)", errno: errno)
        }
    }

    private func strip(_ candidate: PruneCandidate, dryRun: Bool, cutoff: Int64, into report: inout StripReport)
        async throws(MaintenanceError) {
        let hash = candidate.hash
        let id = "strip-" + (0..<2).map { _ in String(UInt64.random(in: .min ... .max), radix: 16) }.joined()
        let path = layout.temporaryPath(upload: id)
        defer { unlink(path) }  // consumed by a put; otherwise the copy goes
        let outcome: MetadataRemoval.Outcome
        do {
            guard try await copy(hash, to: path, size: candidate.size) else {
                report.skipped.append(.init(hash: hash, reason: "its bytes are missing or do not match their hash: run chat-admin media verify"))
                return
            }
            outcome = try await MetadataRemoval.clean(path: path, size: Int(candidate.size), mimeType: candidate.type,
                                                      policy: .remove(uncleanable: .store), writer: POSIXFileWriter())
        } catch {
            throw .wrap(error)
        }
        switch outcome {
        case .notApplicable:
            return
        case .uncleanable(let reason):
            report.uncleanable.append(.init(hash: hash, reason: reason.description))
        case .alreadyClean:
            if !dryRun {
                var record = BlobRecord(hash: hash, size: Int(candidate.size), mimeType: candidate.type)
                record.metadataRemoved = true
                guard try await replace(hash, with: record, cutoff: cutoff, hold: nil) != nil else {
                    report.skipped.append(.init(hash: hash, reason: "referenced while this ran: the next run looks at it again"))
                    return
                }
            }
            report.alreadyClean.append(hash)
        case .cleaned(let newHash, let newSize, let removed):
            var cleaned = StripReport.Cleaned(hash: hash, newHash: newHash, type: candidate.type, size: candidate.size,
                                              newSize: Int64(newSize), attachments: candidate.attachments,
                                              removed: removed.map(\.rawValue), oldRemoved: false)
            if !dryRun {
                guard let moved = try await store(cleaned, from: path, id: id, cutoff: cutoff, into: &report) else { return }
                cleaned.attachments = moved
                cleaned.oldRemoved = try await removeOld(hash, cutoff: cutoff)
                logger.info("image metadata removed from a stored blob",
                            metadata: ["old": "\(hash)", "new": "\(newHash)", "attachments": "\(moved)", "oldRemoved": "\(cleaned.oldRemoved)"])
            }
            report.cleaned.append(cleaned)
            report.bytesBefore += cleaned.size
            report.bytesAfter += cleaned.newSize
        }
    }

    /// Puts the cleaned file at `path` under its hash (unless a present blob has it) and moves the references.
    /// Returns the attachments moved, or nil when the blob was skipped (reported).
    private func store(_ cleaned: StripReport.Cleaned, from path: String, id: String, cutoff: Int64,
                       into report: inout StripReport) async throws(MaintenanceError) -> Int? {
        let key: BlobKey
        let existing: BlobRecord?
        let present: Bool
        do {
            key = try BlobKey(blob: cleaned.newHash)
            // Touch before trusting existing bytes, as an upload does: a blob pruned a moment ago reads as absent.
            existing = try await catalog.touchPresentBlob(hash: cleaned.newHash, at: epochMilliseconds())
            present = existing == nil ? false : try await storage.size(of: key) != nil
        } catch {
            throw .wrap(error)
        }
        var record = existing ?? BlobRecord(hash: cleaned.newHash, size: Int(cleaned.newSize), mimeType: cleaned.type)
        record.metadataRemoved = true
        var hold: String?
        do {
            if !present {
                if storage.deletesAfterCommit {
                    guard try await self.hold(cleaned.newHash, id: id) else {
                        report.skipped.append(.init(hash: cleaned.hash, reason: StoreError.removalInProgress(hash: cleaned.newHash).description))
                        return nil
                    }
                    hold = id
                }
                if existing == nil {
                    do throws(MediaError) {
                        record = try await ThumbnailService(storage: storage, logger: logger).addThumbnails(to: record, from: path)
                    } catch {
                        throw MaintenanceError.media(error)
                    }
                }
                try await storage.put(key, temporaryFile: path)
            }
            guard let moved = try await replace(cleaned.hash, with: record, cutoff: cutoff, hold: hold) else {
                report.skipped.append(.init(hash: cleaned.hash, reason: "referenced while this ran: the next run looks at it again"))
                return nil
            }
            return moved
        } catch {
            if let hold { try? await catalog.deleteReceivingUpload(id: hold) }
            if case .database(.removalInProgress) = MaintenanceError.wrap(error) {
                report.skipped.append(.init(hash: cleaned.hash, reason: StoreError.removalInProgress(hash: cleaned.newHash).description))
                return nil
            }
            throw .wrap(error)
        }
    }

    private func replace(_ hash: String, with record: BlobRecord, cutoff: Int64, hold: String?) async throws(MaintenanceError) -> Int? {
        do {
            return try await catalog.replaceBlob(hash, with: record, referencedBefore: cutoff, releasing: hold, at: epochMilliseconds())
        } catch {
            throw .wrap(error)
        }
    }

    /// Prunes the old blob now that nothing should reference it: the removal re-checks that inside its transaction.
    private func removeOld(_ hash: String, cutoff: Int64) async throws(MaintenanceError) -> Bool {
        let removed = try await BlobRemoval(catalog: catalog, storage: storage).remove(
            [hash], to: .pruned, disposal: .delete, keepThumbnails: false,
            recheck: .matches(BlobSelection(referencedBefore: cutoff, unreferenced: true)))
        return !removed.isEmpty
    }

    /// Rule 3 of `PendingDeletion`, as an upload holds a hash before putting its bytes: a receiving upload row of this
    /// run holds it (released by `replaceBlob`). False when a deleter kept a claim on it for the whole wait.
    private func hold(_ hash: String, id: String) async throws -> Bool {
        try await catalog.insertUpload(UploadRecord(id: id, username: "chat-admin", name: "strip-metadata", declaredSize: nil,
                                                    declaredSHA256: nil, createdAt: epochMilliseconds()))
        do {
            try await MediaStore.hold(hash, upload: id, in: catalog)
            return true
        } catch {
            try? await catalog.deleteReceivingUpload(id: id)  // a leftover would also expire with the resume window
            if case .storeUnavailable(let failure) = error, failure.cause is StoreError { return false }
            throw error
        }
    }

    /// Copies blob `hash` to `path` and checks it against its name. False when it is missing, has another size, or
    /// its hash differs: cleaning corrupted bytes would give them a valid name.
    private func copy(_ hash: String, to path: String, size: Int64) async throws -> Bool {
        let key = try BlobKey(blob: hash)
        let digest: BlobCopy.Digest?
        do {
            digest = try await BlobCopy.toFile(key, from: storage, path: path)
        } catch {
            throw error.cause
        }
        return digest == BlobCopy.Digest(sha256: hash, size: size)
    }
}
