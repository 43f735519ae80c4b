import ChatProtocol
import ChatStore
import Crypto
import GRDB
import MediaStore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

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
    let database: ChatDatabase
    let layout: MediaLayout
    /// Files younger than this are not called stray (see `VerifyReport.skippedRecent`).
    let grace: Duration

    public init(database: ChatDatabase, layout: MediaLayout, grace: Duration = .seconds(900)) {
        self.database = database
        self.layout = layout
        self.grace = grace
    }

    /// `progress(bytesDone, bytesTotal)` is called from the verifying task as work completes.
    public func verify(repair: Bool, progress: @escaping @Sendable (Int64, Int64) -> Void = { _, _ in })
        async throws(MaintenanceError) -> VerifyReport {
        let started = ContinuousClock.now
        // Rows first, files second: a blob recorded after the row snapshot is found as a recent file, not a stray.
        let rows: [String: Int64]
        do {
            rows = try await database.pool.read { db in
                var rows: [String: Int64] = [:]
                for row in try Row.fetchAll(db, sql: "SELECT hash, size FROM blobs WHERE state = 'present'") {
                    rows[row["hash"]] = row["size"]
                }
                return rows
            }
        } catch {
            throw .wrap(error)
        }
        let layout = self.layout
        let files: [ScannedFile]
        do { files = try await MediaStore.runBlocking { try DirectoryScan.files(under: layout.blobsDirectory) } } catch { throw .wrap(error) }

        let recentCutoff = epochMilliseconds() - grace.inMilliseconds
        var report = VerifyReport(checked: 0, bytesHashed: 0, corrupted: [], wrongSize: [], missing: [], stray: [],
                                  skippedRecent: 0, quarantined: [], strayMoved: 0, seconds: 0)
        var toHash: [ScannedFile] = []
        var seen = Set<String>()
        var strayFiles: [ScannedFile] = []
        for file in files {
            let hash = file.name
            guard Hashes.isValidSHA256(hash), hash == hash.lowercased(), layout.blobPath(hash) == file.path,
                  let expected = rows[hash] else {
                if file.modifiedAt >= recentCutoff { report.skippedRecent += 1 } else { strayFiles.append(file) }
                continue
            }
            seen.insert(hash)
            if file.size != expected {
                report.wrongSize.append(.init(hash: hash, expected: expected, actual: file.size))
            } else {
                toHash.append(file)
            }
        }
        report.stray = strayFiles.map(\.path).sorted()
        report.missing = rows.keys.filter { !seen.contains($0) }.sorted()

        let hashed = try await Self.hashAll(toHash, progress: progress)
        report.checked = toHash.count
        report.bytesHashed = toHash.reduce(0) { $0 + $1.size }
        for (file, digest) in zip(toHash, hashed) {
            switch digest {
            case .success(let hex) where hex == file.name: continue
            case .success: report.corrupted.append(file.name)
            case .failure(let error): throw error
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
    private func repair(_ report: inout VerifyReport, strayFiles: [ScannedFile]) async throws(MaintenanceError) {
        let removal = BlobRemoval(database: database, layout: layout)
        let damaged = report.corrupted + report.wrongSize.map(\.hash)
        // Still present: a concurrent prune may have taken it already.
        let isPresent = { @Sendable (db: Database, hash: String) throws -> Bool in
            try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM blobs WHERE hash = ? AND state = 'present'"), arguments: [hash]) ?? false
        }
        report.quarantined = try await removal.remove(damaged, to: .quarantined, disposal: .quarantine, keepThumbnails: false,
                                                      stillEligible: isPresent)
        // Missing: still present in the catalog and still no file (an upload may have put the bytes back since).
        let layout = self.layout
        report.quarantined += try await removal.remove(report.missing, to: .quarantined, disposal: .quarantine, keepThumbnails: false) { db, hash in
            try isPresent(db, hash) && access(layout.blobPath(hash), F_OK) != 0
        }
        report.quarantined.sort()
        let moved: Int
        do {
            let now = epochMilliseconds()
            let quarantine = layout.quarantineDirectory
            moved = try await MediaStore.runBlocking {
                strayFiles.reduce(0) { count, file in
                    count + (rename(file.path, "\(quarantine)/stray-\(file.name).\(now)") == 0 ? 1 : 0)
                }
            }
        } catch {
            throw .wrap(error)
        }
        report.strayMoved = moved
    }

    /// SHA-256 of each file, on every core of the media pool (one job per file, so large and small files balance).
    static func hashAll(_ files: [ScannedFile], progress: @escaping @Sendable (Int64, Int64) -> Void)
        async throws(MaintenanceError) -> [Result<String, MaintenanceError>] {
        let total = files.reduce(0) { $0 + $1.size }
        let counters = Counters()
        let workers = max(2, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        do {
            return try await withThrowingTaskGroup(of: [(Int, Result<String, MaintenanceError>)].self) { group in
                for _ in 0..<workers {
                    group.addTask {
                        try await MediaStore.runBlocking {
                            var results: [(Int, Result<String, MaintenanceError>)] = []
                            var buffer = [UInt8](repeating: 0, count: 1 << 20)
                            while true {
                                let index = counters.next.wrappingAdd(1, ordering: .relaxed).oldValue
                                guard index < files.count else { break }
                                results.append((index, hash(files[index], buffer: &buffer)))
                                let sum = counters.bytes.wrappingAdd(files[index].size, ordering: .relaxed).newValue
                                progress(sum, total)
                            }
                            return results
                        }
                    }
                }
                var ordered = [Result<String, MaintenanceError>](repeating: .success(""), count: files.count)
                for try await part in group {
                    for (index, result) in part { ordered[index] = result }
                }
                return ordered
            }
        } catch {
            throw .wrap(error)
        }
    }

    /// Shared by the hashing workers: the next file to take, and bytes hashed so far.
    private final class Counters: Sendable {
        let next = Atomic<Int>(0)
        let bytes = Atomic<Int64>(0)
    }

    private static func hash(_ file: ScannedFile, buffer: inout [UInt8]) -> Result<String, MaintenanceError> {
        let fd = open(file.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            // Removed since the scan (a concurrent prune): nothing to judge.
            return errno == ENOENT ? .success(file.name) : .failure(.io(operation: "open", path: file.path, errno: errno))
        }
        defer { close(fd) }
        posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL)
        var hasher = SHA256()
        switch FileHashing.update(&hasher, from: fd, buffer: &buffer) {
        case .success: return .success(FileHashing.hex(hasher.finalize()))
        case .failure(let error): return .failure(.io(operation: "read", path: file.path, errno: error.code))
        }
    }
}

