import ChatProtocol
import ChatStore
import MediaStore

public struct GarbageReport: Sendable, Codable, Equatable {
    public var dryRun: Bool
    /// Upload files (and their records) past the resume window, and leftover thumbnail temporaries.
    public var staleTemporaries: [String]
    public var staleUploadRecords: Int
    /// Files under `blobs/` with no present blob (a crash between rename and record, or a pruned blob's file).
    public var orphanBlobs: [String]
    /// Thumbnails whose blob does not list them.
    public var orphanThumbnails: [String]
    /// Files a crashed prune left in `trash/`: put back when their blob is still present, deleted otherwise.
    public var trashRestored: [String]
    public var trashDeleted: [String]
    public var bytesFreed: Int64
    /// Object stores (`deletesAfterCommit`): hashes whose pending deletion (an interrupted prune or repair, or an
    /// orphan found now) was carried out (would be, in a dry run), and those still pending afterwards.
    public var pendingDeletionsFinished: [String] = []
    public var pendingDeletionsLeft: [String] = []
    /// Object stores: unfinished multipart uploads older than the grace period that no upload in progress holds
    /// (their aborts failed, or their writer died), aborted (would be, in a dry run) so their parts stop costing.
    public var multipartUploadsAborted: [String] = []
}

/// `chat-admin media gc`: removes what no row accounts for. Anything younger than the grace period is left alone,
/// because the server writes a file before it records it.
public struct MediaGarbageCollector: Sendable {
    let catalog: any MediaCatalog
    let storage: any BlobStorage
    /// The server's uploads in progress (`tmp/` of the media directory).
    let spool: UploadSpool
    /// How long an interrupted upload may be resumed (the server's setting).
    let resumeWindow: Duration
    let grace: Duration

    public init(catalog: any MediaCatalog, storage: any BlobStorage, spool: UploadSpool,
                resumeWindow: Duration = MediaLimits().resumeWindow, grace: Duration = .seconds(900)) {
        self.catalog = catalog
        self.storage = storage
        self.spool = spool
        self.resumeWindow = resumeWindow
        self.grace = grace
    }

    public func collect(dryRun: Bool) async throws(MaintenanceError) -> GarbageReport {
        let now = epochMilliseconds()
        let graceCutoff = now - grace.inMilliseconds
        let resumeCutoff = now - max(resumeWindow, grace).inMilliseconds
        // Rows first, files second, as in verify: a file newer than the snapshot is young, hence spared.
        var present: [String: Set<BlobKey>] = [:]
        var thumbnails: [String: Set<BlobKey>] = [:]
        var receiving: [String: Int64] = [:]
        var storing = Set<String>()
        let unfinished: [UnfinishedWrite]
        let files: (blobs: [StoredObject], thumbs: [StoredObject], temporary: [StoredObject], trash: [StoredObject])
        do {
            let inventory = try await catalog.inventory()
            for blob in inventory.blobs {
                let keys = Set(blob.thumbnails.compactMap { try? BlobKey(thumbnailOf: blob.hash, size: $0.size, type: $0.type) })
                thumbnails[blob.hash] = keys
                if blob.state == .present { present[blob.hash] = keys }
            }
            for upload in inventory.receivingUploads {
                receiving[upload.id] = upload.updatedAt
                if let hash = upload.storingHash { storing.insert(hash) }
            }
            // After the rows: a write started since is younger than the cutoff, or held by a row read here.
            unfinished = try await storage.unfinishedWrites(startedBefore: graceCutoff)
            files = (try await storage.list(.blobs, prefix: "").collect().flatMap { $0 },
                     try await storage.list(.thumbnails, prefix: "").collect().flatMap { $0 },
                     try await spool.files(),
                     try await storage.list(.setAside, prefix: "").collect().flatMap { $0 })
        } catch {
            throw .wrap(error)
        }

        var report = GarbageReport(dryRun: dryRun, staleTemporaries: [], staleUploadRecords: 0, orphanBlobs: [],
                                   orphanThumbnails: [], trashRestored: [], trashDeleted: [], bytesFreed: 0)
        var deletions: [StoredObject] = []
        var spoolDeletions: [StoredObject] = []
        var expiredUploads: [String] = []
        for file in files.temporary where file.modifiedAt < resumeCutoff {
            // An upload file is stale when its upload's resume window is over too (a long upload still streaming
            // keeps its file's modification time fresh even if its record is old).
            if file.name.hasSuffix(".part") {
                let id = String(file.name.dropLast(5))
                if let updated = receiving[id] {
                    guard updated < resumeCutoff else { continue }
                    expiredUploads.append(id)
                }
            }
            spoolDeletions.append(file)
            report.staleTemporaries.append(file.location)
        }
        let temporaryNames = Set(files.temporary.map(\.name))
        for (id, updated) in receiving where updated < resumeCutoff && !temporaryNames.contains(id + ".part") {
            expiredUploads.append(id)  // its file is gone already
        }
        // An object store deletes what a row might still come to need only through pending deletions (see
        // PendingDeletion): an upload of the same bytes may be putting them back right now.
        let deferred = storage.deletesAfterCommit
        var deferredHashes = Set<String>()
        // Misnamed or misplaced files (no key) are orphans too.
        for file in files.blobs where file.modifiedAt < graceCutoff && file.key.map({ present[$0.hash] == nil }) ?? true {
            if deferred, let key = file.key { deferredHashes.insert(key.hash) } else { deletions.append(file) }
            report.orphanBlobs.append(file.location)
        }
        for file in files.thumbs where file.modifiedAt < graceCutoff && !(file.key.map { thumbnails[$0.hash]?.contains($0) ?? false } ?? false) {
            if deferred, let key = file.key, present[key.hash] == nil { deferredHashes.insert(key.hash) } else { deletions.append(file) }
            report.orphanThumbnails.append(file.location)
        }
        var restores: [(object: StoredObject, key: BlobKey)] = []
        for file in files.trash {
            // Put back what a crashed removal set aside from a blob that is still present, unless it is back already.
            if let key = file.key, let keys = present[key.hash], key.kind == .blob || keys.contains(key),
               (try? await storage.size(of: key)) == .some(nil) {
                restores.append((file, key))
                report.trashRestored.append(file.location)
            } else {
                deletions.append(file)
                report.trashDeleted.append(file.location)
            }
        }
        // A multipart upload whose hash an upload holds may be that upload's put, still running.
        let abandoned = unfinished.filter { write in write.key.map { !storing.contains($0.hash) } ?? true }
        report.multipartUploadsAborted = abandoned.map(\.location).sorted()
        report.staleUploadRecords = expiredUploads.count
        report.bytesFreed = (deletions + spoolDeletions).reduce(0) { $0 + $1.size }
        for list in [\GarbageReport.staleTemporaries, \.orphanBlobs, \.orphanThumbnails, \.trashRestored, \.trashDeleted] {
            report[keyPath: list].sort()
        }
        if deferred {
            do {
                let pending = try await catalog.pendingDeletions().map(\.hash)
                report.pendingDeletionsFinished = Array(Set(pending).union(deferredHashes)).sorted()
            } catch {
                throw .wrap(error)
            }
        }
        guard !dryRun else { return report }
        if deferred {
            do {
                _ = try await catalog.recordPendingDeletions(deferredHashes.sorted(), disposal: .delete, at: epochMilliseconds())
            } catch {
                throw .wrap(error)
            }
            let outcome = try await PendingDeletions(catalog: catalog, storage: storage).run(nil)
            report.pendingDeletionsFinished = outcome.finished.sorted()
            do {
                report.pendingDeletionsLeft = try await catalog.pendingDeletions().map(\.hash)
            } catch {
                throw .wrap(error)
            }
        }

        var aborted: [String] = []
        for write in abandoned {
            // A failure leaves it for the next gc, as a failed deletion does.
            if (try? await storage.discard(write)) != nil { aborted.append(write.location) }
        }
        report.multipartUploadsAborted = aborted.sorted()
        do {
            try await catalog.deleteStaleUploads(ids: expiredUploads, updatedBefore: resumeCutoff)
            for restore in restores { try? await storage.restore(restore.object, as: restore.key) }
            for file in deletions { try? await storage.remove(file) }
            for file in spoolDeletions { await spool.remove(file) }
        } catch {
            throw .wrap(error)
        }
        return report
    }
}
