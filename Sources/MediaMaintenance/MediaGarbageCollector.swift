import ChatProtocol
import ChatStore
import GRDB
import MediaStore
#if canImport(Glibc)
import Glibc
#endif

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
}

/// `chat-admin media gc`: removes what no row accounts for. Anything younger than the grace period is left alone,
/// because the server writes a file before it records it.
public struct MediaGarbageCollector: Sendable {
    let database: ChatDatabase
    let layout: MediaLayout
    /// How long an interrupted upload may be resumed (the server's setting).
    let resumeWindow: Duration
    let grace: Duration

    public init(database: ChatDatabase, layout: MediaLayout, resumeWindow: Duration = MediaLimits().resumeWindow,
                grace: Duration = .seconds(900)) {
        self.database = database
        self.layout = layout
        self.resumeWindow = resumeWindow
        self.grace = grace
    }

    public func collect(dryRun: Bool) async throws(MaintenanceError) -> GarbageReport {
        let now = epochMilliseconds()
        let graceCutoff = now - grace.inMilliseconds
        let resumeCutoff = now - max(resumeWindow, grace).inMilliseconds
        let layout = self.layout
        // Rows first, files second, as in verify: a file newer than the snapshot is young, hence spared.
        let (present, thumbnails, receiving): ([String: Set<String>], [String: Set<String>], [String: Int64])
        do {
            (present, thumbnails, receiving) = try await database.pool.read { db in
                var present: [String: Set<String>] = [:]
                var thumbnails: [String: Set<String>] = [:]
                for row in try Row.fetchAll(db, sql: "SELECT * FROM blobs") {
                    let blob = BlobRecord(row: row)
                    let names = Set(blob.thumbnails.map { lastComponent(layout.thumbnailPath(blob.hash, size: $0.size, type: $0.type)) })
                    thumbnails[blob.hash] = names
                    if blob.state == .present { present[blob.hash] = names }
                }
                var receiving: [String: Int64] = [:]
                for row in try Row.fetchAll(db, sql: "SELECT id, updated_at FROM uploads WHERE state = 'receiving'") {
                    receiving[row["id"]] = row["updated_at"]
                }
                return (present, thumbnails, receiving)
            }
        } catch {
            throw .wrap(error)
        }
        let files: (blobs: [ScannedFile], thumbs: [ScannedFile], temporary: [ScannedFile], trash: [ScannedFile])
        do {
            files = try await MediaStore.runBlocking {
                (try DirectoryScan.files(under: layout.blobsDirectory), try DirectoryScan.files(under: layout.thumbnailsDirectory),
                 try DirectoryScan.files(under: layout.temporaryDirectory), try DirectoryScan.files(under: layout.trashDirectory))
            }
        } catch {
            throw .wrap(error)
        }

        var report = GarbageReport(dryRun: dryRun, staleTemporaries: [], staleUploadRecords: 0, orphanBlobs: [],
                                   orphanThumbnails: [], trashRestored: [], trashDeleted: [], bytesFreed: 0)
        var deletions: [ScannedFile] = []
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
            deletions.append(file)
            report.staleTemporaries.append(file.path)
        }
        let temporaryNames = Set(files.temporary.map(\.name))
        for (id, updated) in receiving where updated < resumeCutoff && !temporaryNames.contains(id + ".part") {
            expiredUploads.append(id)  // its file is gone already
        }
        for file in files.blobs where file.modifiedAt < graceCutoff {
            guard present[file.name] == nil || layout.blobPath(file.name) != file.path else { continue }
            deletions.append(file)
            report.orphanBlobs.append(file.path)
        }
        for file in files.thumbs where file.modifiedAt < graceCutoff {
            let hash = String(file.name.prefix(64))
            guard !(thumbnails[hash]?.contains(file.name) ?? false) || !file.path.hasPrefix(layout.thumbnailsDirectory + "/" + layout.fanOut(hash) + "/") else { continue }
            deletions.append(file)
            report.orphanThumbnails.append(file.path)
        }
        var restores: [(from: String, to: String)] = []
        for file in files.trash {
            let hash = String(file.name.prefix(64))
            if file.name.count == 64, present[hash] != nil, access(layout.blobPath(hash), F_OK) != 0 {
                restores.append((file.path, layout.blobPath(hash)))
                report.trashRestored.append(file.path)
            } else if file.name.count > 64, present[hash]?.contains(file.name) ?? false,
                      access(layout.thumbnailsDirectory + "/" + layout.fanOut(hash) + "/" + file.name, F_OK) != 0 {
                restores.append((file.path, layout.thumbnailsDirectory + "/" + layout.fanOut(hash) + "/" + file.name))
                report.trashRestored.append(file.path)
            } else {
                deletions.append(file)
                report.trashDeleted.append(file.path)
            }
        }
        report.staleUploadRecords = expiredUploads.count
        report.bytesFreed = deletions.reduce(0) { $0 + $1.size }
        for list in [\GarbageReport.staleTemporaries, \.orphanBlobs, \.orphanThumbnails, \.trashRestored, \.trashDeleted] {
            report[keyPath: list].sort()
        }
        guard !dryRun else { return report }

        do {
            let stale = expiredUploads
            try await database.pool.write { db in
                for id in stale {
                    try db.execute(sql: "DELETE FROM uploads WHERE id = ? AND state = 'receiving' AND updated_at < ?",
                                   arguments: [id, resumeCutoff])
                }
            }
            let moves = restores
            let doomed = deletions
            try await MediaStore.runBlocking {
                for move in moves { rename(move.from, move.to) }
                for file in doomed { unlink(file.path) }
            }
        } catch {
            throw .wrap(error)
        }
        return report
    }
}
