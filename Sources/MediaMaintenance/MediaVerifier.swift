import ChatProtocol
import ChatStore
import MediaStore

/// What `media verify` found.
public struct VerifyReport: Sendable, Codable, Equatable {
    public struct WrongSize: Sendable, Codable, Equatable {
        public var hash: String
        public var expected: Int64
        public var actual: Int64
    }

    /// Blob files hashed, and their bytes.
    public var checked: Int
    public var bytesHashed: Int64
    /// Files whose SHA-256 is not their name (same size as recorded).
    public var corrupted: [String]
    /// Files whose size differs from the database's.
    public var wrongSize: [WrongSize]
    /// Present blobs with no file.
    public var missing: [String]
    /// Files under `blobs/` with no present blob row, or misnamed or misplaced (paths).
    public var stray: [String]
    /// Files too new to judge: an upload may be between putting its file in place and recording it (paths).
    public var skippedRecent: Int
    /// With `--repair`: hashes quarantined, stray files moved to `quarantine/`.
    public var quarantined: [String]
    public var strayMoved: Int
    public var seconds: Double

    public var problems: Int { corrupted.count + wrongSize.count + missing.count + stray.count }
}

/// Re-hashes every blob and compares files with the catalog: `chat-admin media verify`.
public struct MediaVerifier: Sendable {
    let catalog: any MediaCatalog
    let storage: any BlobStorage
    /// Files younger than this are not called stray (see `VerifyReport.skippedRecent`).
    let grace: Duration

    public init(catalog: any MediaCatalog, storage: any BlobStorage, grace: Duration = .seconds(900)) {
        self.catalog = catalog
        self.storage = storage
        self.grace = grace
    }

    /// `progress(bytesDone, bytesTotal)` is called from the verifying task as work completes.
    public func verify(repair: Bool, progress: @escaping @Sendable (Int64, Int64) -> Void = { _, _ in })
        async throws(MaintenanceError) -> VerifyReport {
        let started = ContinuousClock.now
        // Rows first, files second: a blob recorded after the row snapshot is found as a recent file, not a stray.
        let rows: [String: Int64]
        do { rows = try await catalog.presentBlobSizes() } catch { throw .wrap(error) }
        let files: [StoredObject]
        do { files = try await storage.list(.blobs, prefix: "").collect().flatMap { $0 } } catch { throw .wrap(error) }

        let recentCutoff = epochMilliseconds() - grace.inMilliseconds
        var report = VerifyReport(checked: 0, bytesHashed: 0, corrupted: [], wrongSize: [], missing: [], stray: [],
                                  skippedRecent: 0, quarantined: [], strayMoved: 0, seconds: 0)
        var toHash: [StoredObject] = []
        var seen = Set<String>()
        var strayFiles: [StoredObject] = []
        for file in files {
            guard let key = file.key, let expected = rows[key.hash] else {
                if file.modifiedAt >= recentCutoff { report.skippedRecent += 1 } else { strayFiles.append(file) }
                continue
            }
            seen.insert(key.hash)
            if file.size != expected {
                report.wrongSize.append(.init(hash: key.hash, expected: expected, actual: file.size))
            } else {
                toHash.append(file)
            }
        }
        report.stray = strayFiles.map(\.location).sorted()
        report.missing = rows.keys.filter { !seen.contains($0) }.sorted()

        let total = toHash.reduce(0) { $0 + $1.size }
        let hashed = await storage.sha256(of: toHash) { progress($0, total) }
        report.checked = toHash.count
        report.bytesHashed = total
        for (file, digest) in zip(toHash, hashed) {
            switch digest {
            case .success(let hex) where hex == nil || hex == file.key?.hash: continue
            case .success: report.corrupted.append(file.name)
            case .failure(let error): throw .storage(error)
            }
        }
        report.corrupted.sort()
        report.wrongSize.sort { $0.hash < $1.hash }

        if repair {
            try await self.repair(&report, strayFiles: strayFiles)
        }
        report.seconds = (ContinuousClock.now - started).inSeconds
        return report
    }

    /// Quarantines corrupted and missing blobs (their attachments then show as expired) and moves stray files aside.
    private func repair(_ report: inout VerifyReport, strayFiles: [StoredObject]) async throws(MaintenanceError) {
        let removal = BlobRemoval(catalog: catalog, storage: storage)
        let damaged = report.corrupted + report.wrongSize.map(\.hash)
        // Still present: a concurrent prune may have taken it already.
        report.quarantined = try await removal.remove(damaged, to: .quarantined, disposal: .quarantine, keepThumbnails: false,
                                                      recheck: .present)
        // Missing: still present in the catalog and still no bytes (an upload may have put them back since).
        report.quarantined += try await removal.remove(report.missing, to: .quarantined, disposal: .quarantine, keepThumbnails: false,
                                                       recheck: .present, bytes: .missing)
        report.quarantined.sort()
        var moved = 0
        for file in strayFiles {
            do { try await storage.quarantine(file); moved += 1 } catch { continue }
        }
        report.strayMoved = moved
    }
}
