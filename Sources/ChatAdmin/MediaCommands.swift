import ArgumentParser
import ChatStore
import Foundation
import Logging
import MediaMaintenance
import MediaObjectStore
import MediaStore
import ObjectStorage

extension ChatAdmin {
    struct Media: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "media",
            abstract: "Keep the media store healthy: stats, verify, prune, gc, strip-metadata (safe while the server runs).",
            discussion: """
                Removing bytes while the server accepts uploads is safe: the server marks a blob referenced in a \
                write transaction before it relies on existing bytes, and prune and verify --repair re-check their \
                criteria inside the transaction that removes the files, sparing anything referenced within the grace \
                period (--grace, at least 1m). Messages keep the metadata of removed attachments and show them as \
                expired.
                """,
            subcommands: [Stats.self, Verify.self, Prune.self, GC.self, StripMetadata.self, Migrate.self]
        )
    }
}

/// The data directory's database and local media directory.
struct LocalMediaOptions: ParsableArguments {
    @OptionGroup var data: DataOptions

    @Option(name: .customLong("media-dir"), help: "The media store; default: media/ under --data-dir (CHAT_MEDIA_DIR).")
    var mediaDirectory: String?

    var layout: MediaLayout {
        MediaLayout(directory: mediaDirectory ?? ProcessInfo.processInfo.environment["CHAT_MEDIA_DIR"]
            ?? DataDirectory(data.dataDirectory).mediaPath)
    }
}

/// The data directory's database and the media store: the local directory, or a bucket.
struct MediaOptions: ParsableArguments {
    @OptionGroup var local: LocalMediaOptions

    var data: DataOptions { local.data }
    var layout: MediaLayout { local.layout }

    @Option(name: .customLong("media-store"), help: "The server's S3-compatible media store, s3://BUCKET/PREFIX?endpoint=http://HOST:PORT&region=REGION, instead of the media directory; credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or ~/.aws/credentials (CHAT_MEDIA_STORE).")
    var mediaStore: String?

    /// Runs `body` with the catalog (of the database the server uses), the storage (the media directory, or the
    /// bucket of --media-store) and the local layout (the server's spool of uploads in progress). The media directory
    /// must exist when it holds the blobs (a typo should not look like an empty store).
    func withMedia<T: Sendable>(_ body: @Sendable (any MediaCatalog, any BlobStorage, MediaLayout) async throws -> T) async throws -> T {
        let layout = self.layout
        if let store = mediaStore ?? ProcessInfo.processInfo.environment["CHAT_MEDIA_STORE"], !store.isEmpty {
            return try await withObjectStore(store) { storage in
                try await data.withStorage { try await body($0.catalog, storage, layout) }
            }
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: layout.directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw AdminFailure("no media directory at \(layout.directory): pass --data-dir or --media-dir")
        }
        let storage = LocalBlobStorage(layout: layout)
        return try await data.withStorage { try await body($0.catalog, storage, layout) }
    }
}

/// Runs `body` with the bucket of an `s3://` media store URL; a bad URL or missing credentials is one line.
func withObjectStore<T: Sendable>(_ text: String, _ body: (S3BlobStorage) async throws -> T) async throws -> T {
    let configuration: S3Configuration
    do { configuration = try S3Configuration.mediaStore(text) } catch { throw AdminFailure(error.description) }
    var logger = Logger(label: "chat-admin")
    logger.logLevel = .error
    let client = S3Client(configuration: configuration, logger: logger)
    do {
        let result = try await body(S3BlobStorage(client: client))
        try? await client.shutdown()
        return result
    } catch {
        try? await client.shutdown()
        throw error
    }
}

/// "--grace 15m" with its minimum.
struct GraceOption: ParsableArguments {
    @Option(help: "Leave alone anything referenced or written more recently than this (at least 1m).")
    var grace: String = "15m"

    var duration: Duration {
        get throws {
            guard let seconds = parseDuration(grace), seconds >= 60 else {
                throw ValidationError("--grace: a duration of at least 1m, such as 15m or 1h")
            }
            return .seconds(seconds)
        }
    }
}

/// Deletions from an object store that wait for `media gc` (prune, strip-metadata).
func notePendingDeletions(_ count: Int) {
    guard count > 0 else { return }
    note("\(count) object deletions are still pending (the store failed, or an upload holds them); run chat-admin media gc later to finish them")
}

/// Runs a maintenance operation, turning its typed error into a one-line failure.
func maintenance<T>(_ body: () async throws(MaintenanceError) -> T) async throws -> T {
    do { return try await body() } catch { throw AdminFailure(error.description) }
}

extension ChatAdmin.Media {
    struct Stats: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Blobs, bytes, thumbnails, types, deduplication savings, oldest and newest, per-user totals.")

        @Flag(name: .customLong("by-user"), help: "Add per-user upload totals.")
        var byUser = false

        @OptionGroup var options: MediaOptions

        func run() async throws {
            try await options.withMedia { catalog, storage, _ in
                let stats = try await maintenance { () async throws(MaintenanceError) in
                    try await MediaStatistics(catalog: catalog, storage: storage).compute(byUser: byUser)
                }
                if options.data.json { return try printReport(stats) }
                let ratio = stats.bytesStored > 0 ? String(format: " (%.2fx)", Double(stats.bytesReferenced) / Double(stats.bytesStored)) : ""
                print(table(header: ["", ""], rows: [
                    ["blobs", "\(stats.blobs)  \(formatBytes(stats.bytesStored))"],
                    ["files on disk", "\(stats.blobFiles)  \(formatBytes(stats.blobFileBytes))"],
                    ["thumbnails", "\(stats.thumbnails)  \(formatBytes(stats.thumbnailBytes))"],
                    ["attachments", "\(stats.attachments)  \(formatBytes(stats.bytesReferenced)) referenced\(ratio)"],
                    ["dedup savings", formatBytes(stats.dedupSavings)],
                    ["unreferenced", "\(stats.unreferencedBlobs)  \(formatBytes(stats.unreferencedBytes))"],
                    ["pruned", "\(stats.pruned)"],
                    ["quarantined", "\(stats.quarantined)"],
                    ["oldest", stats.oldest.map(formatTime) ?? "-"],
                    ["newest", stats.newest.map(formatTime) ?? "-"],
                ]).split(separator: "\n").dropFirst().joined(separator: "\n"))
                if !stats.byType.isEmpty {
                    print("")
                    print(table(header: ["TYPE", "BLOBS", "SIZE"],
                                rows: stats.byType.map { [$0.type, "\($0.blobs)", formatBytes($0.bytes)] }, rightAligned: [1, 2]))
                }
                if let users = stats.byUser {
                    print("")
                    print(table(header: ["USER", "UPLOADS", "UPLOADED", "BLOBS", "PRESENT"],
                                rows: users.map { [$0.user, "\($0.uploads)", formatBytes($0.bytesUploaded), "\($0.distinctBlobs)",
                                                   formatBytes($0.bytesPresent)] },
                                rightAligned: [1, 2, 3, 4]))
                }
            }
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Re-hash every blob and compare files with the database.",
            discussion: """
                Finds corrupted files (hash is not the name), wrong sizes, rows with no file and files with no row. \
                --repair moves corrupted blobs to quarantine/ and marks their attachments expired, marks missing \
                ones the same way, and moves stray files to quarantine/. Exit code 2 when problems were found and \
                not repaired.
                """)

        @Flag(help: "Quarantine corrupted and missing blobs and move stray files aside.")
        var repair = false

        @OptionGroup var grace: GraceOption
        @OptionGroup var options: MediaOptions

        func run() async throws {
            try await options.withMedia { catalog, storage, layout in
                let verifier = MediaVerifier(catalog: catalog, storage: storage, grace: try grace.duration)
                let bar = ProgressReporter("verifying")
                let report = try await maintenance { () async throws(MaintenanceError) in
                    try await verifier.verify(repair: repair) { done, total in bar.update(done, total: total) }
                }
                bar.finish()
                if options.data.json {
                    try printReport(report)
                } else {
                    let rate = report.seconds > 0 ? Double(report.bytesHashed) / report.seconds : 0
                    print("checked \(report.checked) blobs, \(formatBytes(report.bytesHashed)) in "
                          + String(format: "%.2f s (%@/s)", report.seconds, formatBytes(Int64(rate))))
                    let lists: [(String, [String])] = [
                        ("corrupted", report.corrupted),
                        ("wrong size", report.wrongSize.map { "\($0.hash) (expected \($0.expected) B, found \($0.actual) B)" }),
                        ("missing file", report.missing), ("stray file", report.stray),
                    ]
                    for (label, items) in lists where !items.isEmpty {
                        print("\(label): \(items.count)")
                        for item in items { print("  \(item)") }
                    }
                    if report.skippedRecent > 0 { print("skipped \(report.skippedRecent) files younger than the grace period") }
                    if repair, report.problems > 0 {
                        print("repaired: quarantined \(report.quarantined.count) blobs, moved \(report.strayMoved) stray files to "
                              + (storage is LocalBlobStorage ? layout.quarantineDirectory : "quarantine/ in the bucket"))
                    }
                    if report.problems == 0 { print("no problems") }
                }
                if report.problems > 0 && !repair { throw ExitCode(2) }
            }
        }
    }

    struct Prune: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove blobs by age, reference, size, type or a total budget (attachments then show as expired).",
            discussion: """
                Criteria combine: every blob removed meets all of them. --max-total evicts the least recently \
                referenced of the matching blobs until the store fits. A blob referenced within --grace is never \
                removed. --dry-run lists what would go and the bytes freed, and changes nothing.
                """)

        @Option(name: .customLong("older-than"), help: "Last referenced (sent or uploaded) longer ago than this, e.g. 90d.")
        var olderThan: String?

        @Flag(help: "Attached to no message.")
        var unreferenced = false

        @Option(name: .customLong("larger-than"), help: "Larger than this size, e.g. 20MiB.")
        var largerThan: String?

        @Option(help: "MIME type or family, e.g. image/* or application/pdf.")
        var type: String?

        @Option(name: .customLong("max-total"), help: "Evict least recently referenced first until the store holds at most this, e.g. 10GiB.")
        var maxTotal: String?

        @Flag(name: .customLong("keep-thumbnails"), help: "Keep thumbnails, so expired attachments keep their previews.")
        var keepThumbnails = false

        @Flag(name: .customLong("dry-run"), help: "List what would be removed; change nothing.")
        var dryRun = false

        @OptionGroup var grace: GraceOption
        @OptionGroup var options: MediaOptions

        func criteria() throws -> PruneCriteria {
            var criteria = PruneCriteria()
            if let olderThan {
                guard let seconds = parseDuration(olderThan) else { throw ValidationError("--older-than: a duration such as 90d or 12h") }
                criteria.olderThan = .seconds(seconds)
            }
            criteria.unreferenced = unreferenced
            if let largerThan {
                guard let bytes = parseSize(largerThan) else { throw ValidationError("--larger-than: a size such as 20MiB") }
                criteria.largerThan = bytes
            }
            if let type {
                guard type.split(separator: "/").count == 2 else { throw ValidationError("--type: a MIME type such as image/png or image/*") }
                criteria.type = type
            }
            if let maxTotal {
                guard let bytes = parseSize(maxTotal) else { throw ValidationError("--max-total: a size such as 10GiB") }
                criteria.maxTotal = bytes
            }
            criteria.keepThumbnails = keepThumbnails
            criteria.grace = try grace.duration
            guard criteria.olderThan != nil || unreferenced || largerThan != nil || type != nil || maxTotal != nil else {
                throw ValidationError("say what to prune: --older-than, --unreferenced, --larger-than, --type or --max-total")
            }
            return criteria
        }

        func run() async throws {
            let criteria = try criteria()
            try await options.withMedia { catalog, storage, _ in
                let bar = ProgressReporter("pruning")
                let report = try await maintenance { () async throws(MaintenanceError) in
                    try await MediaPruner(catalog: catalog, storage: storage).prune(criteria, dryRun: dryRun) { done, total in
                        bar.update(Int64(done), total: Int64(total))
                    }
                }
                bar.finish()
                if options.data.json { return try printReport(report) }
                if dryRun {
                    if !report.candidates.isEmpty {
                        print(table(header: ["SHA256", "TYPE", "SIZE", "LAST REFERENCED", "ATTACHMENTS"],
                                    rows: report.candidates.map { [$0.hash, $0.type, formatBytes($0.size), formatTime($0.lastReferencedAt), "\($0.attachments)"] },
                                    rightAligned: [2, 4]))
                    }
                    print("would remove \(report.candidates.count) blobs, freeing \(formatBytes(report.bytes)); "
                          + "the store would hold \(formatBytes(report.totalAfter)) (dry run: nothing changed)")
                } else {
                    let spared = report.candidates.count - report.removed.count
                    print("removed \(report.removed.count) blobs, freed \(formatBytes(report.bytes)); the store holds \(formatBytes(report.totalAfter))"
                          + (spared > 0 ? "; \(spared) spared because they were referenced meanwhile" : ""))
                    notePendingDeletions(report.pendingDeletions)
                }
            }
        }
    }

    struct GC: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "gc",
            abstract: "Remove stale temporary uploads, orphan blob files and orphan thumbnails; finish interrupted prunes.",
            discussion: """
                On an object store it also aborts multipart uploads older than --grace that no upload in progress \
                holds: the parts of a put whose abort failed (the store was down, or the server was killed).
                """)

        @Flag(name: .customLong("dry-run"), help: "List what would be removed; change nothing.")
        var dryRun = false

        @Option(name: .customLong("resume-window"), help: "The server's --upload-resume-window, as a duration (default 10m).")
        var resumeWindow: String = "10m"

        @OptionGroup var grace: GraceOption
        @OptionGroup var options: MediaOptions

        func run() async throws {
            guard let window = parseDuration(resumeWindow) else { throw ValidationError("--resume-window: a duration such as 10m") }
            try await options.withMedia { catalog, storage, layout in
                let collector = MediaGarbageCollector(catalog: catalog, storage: storage, spool: UploadSpool(layout: layout), resumeWindow: .seconds(window),
                                                      grace: try grace.duration)
                let report = try await maintenance { () async throws(MaintenanceError) in try await collector.collect(dryRun: dryRun) }
                if options.data.json { return try printReport(report) }
                let lists: [(String, [String])] = [
                    ("stale temporary files", report.staleTemporaries), ("orphan blob files", report.orphanBlobs),
                    ("orphan thumbnails", report.orphanThumbnails), ("restored from trash", report.trashRestored),
                    ("trash emptied", report.trashDeleted),
                    ("pending deletions \(dryRun ? "to finish" : "finished")", report.pendingDeletionsFinished),
                    ("pending deletions left (held by an upload, or failed; the next gc retries)", report.pendingDeletionsLeft),
                    ("unfinished multipart uploads \(dryRun ? "to abort" : "aborted")", report.multipartUploadsAborted),
                ]
                for (label, items) in lists where !items.isEmpty {
                    print("\(label): \(items.count)")
                    for item in items { print("  \(item)") }
                }
                print("\(dryRun ? "would free" : "freed") \(formatBytes(report.bytesFreed)); "
                      + "\(report.staleUploadRecords) expired upload record\(report.staleUploadRecords == 1 ? "" : "s")"
                      + (dryRun ? " (dry run: nothing changed)" : " removed"))
            }
        }
    }
}

extension ChatAdmin.Media {
    struct StripMetadata: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "strip-metadata",
            abstract: "Remove location and device data from JPEG and PNG blobs stored before the server did it at upload.",
            discussion: """
                Each image that still carries EXIF GPS or device data, maker notes, XMP or PNG text is cleaned as \
                uploads are (no re-encoding), stored under the cleaned bytes' SHA-256, and its attachments and uploads \
                are moved to it; the old blob is then pruned. Images referenced within --grace are left for a later \
                run, as are ones referenced while this runs. Images that cannot be cleaned safely are listed and left \
                as they are. Running it again changes nothing; an interrupted run is finished by the next one. \
                --dry-run lists what would change and changes nothing.
                """)

        @Flag(name: .customLong("dry-run"), help: "List what would be cleaned; change nothing.")
        var dryRun = false

        @OptionGroup var grace: GraceOption
        @OptionGroup var options: MediaOptions

        func run() async throws {
            let grace = try grace.duration
            try await options.withMedia { catalog, storage, layout in
                var logger = Logger(label: "chat-admin")
                logger.logLevel = .error
                let stripper = MetadataStripper(catalog: catalog, storage: storage, layout: layout, grace: grace, logger: logger)
                let bar = ProgressReporter(dryRun ? "checking" : "cleaning")
                let report = try await maintenance { () async throws(MaintenanceError) in
                    try await stripper.strip(dryRun: dryRun) { done, total in bar.update(Int64(done), total: Int64(total)) }
                }
                bar.finish()
                if options.data.json { return try printReport(report) }
                if !report.cleaned.isEmpty {
                    print(table(header: ["SHA256", "TYPE", "SIZE", "CLEANED", "ATTACHMENTS", "REMOVED"],
                                rows: report.cleaned.map { [$0.hash, $0.type, formatBytes($0.size), formatBytes($0.newSize),
                                                            "\($0.attachments)", $0.removed.joined(separator: ",")] },
                                rightAligned: [2, 3, 4]))
                }
                for (label, items) in [("cannot be cleaned safely, left as stored", report.uncleanable), ("left for a later run", report.skipped)]
                where !items.isEmpty {
                    print("\(label): \(items.count)")
                    for item in items { print("  \(item.hash): \(item.reason)") }
                }
                let saved = formatBytes(report.bytesBefore - report.bytesAfter)
                print("\(dryRun ? "would clean" : "cleaned") \(report.cleaned.count) blobs of \(formatBytes(report.bytesBefore)), "
                      + "removing \(saved) of metadata; \(report.alreadyClean.count) \(dryRun ? "would be recorded" : "recorded") as already clean"
                      + (report.skippedRecent > 0 ? "; \(report.skippedRecent) referenced within the grace period, not looked at" : "")
                      + (dryRun ? " (dry run: nothing changed)" : ""))
                let kept = report.cleaned.filter { !$0.oldRemoved }.count
                if !dryRun, kept > 0 {
                    note("\(kept) old blobs were referenced again while they were replaced and stay; run strip-metadata again later")
                }
                notePendingDeletions(report.pendingDeletions)
            }
        }
    }
}
