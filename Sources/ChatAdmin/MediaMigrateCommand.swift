import ArgumentParser
import Foundation
import MediaMaintenance
import MediaStore
import Synchronization

extension ChatAdmin.Media {
    struct Migrate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy the local media directory into an S3-compatible bucket (resumable, idempotent).",
            discussion: """
                Copies every blob (re-hashed on the way: a corrupted or unreadable file is reported, not copied) and \
                thumbnail that the bucket does not hold yet, from the media directory of --data-dir (or --media-dir) \
                to the bucket of --to; CHAT_MEDIA_STORE is not read. Run it again after an interruption, or to pick \
                up files uploaded since. The database does not change: keys are the same. Then restart the servers \
                with --media-store. Exit code 2 when blobs were left behind as corrupted or unreadable.
                """)

        @Option(help: "The bucket: s3://BUCKET/PREFIX?endpoint=http://HOST:PORT&region=REGION (credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or ~/.aws/credentials).")
        var to: String

        @OptionGroup var options: LocalMediaOptions

        func run() async throws {
            let layout = options.layout
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: layout.directory, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw AdminFailure("no media directory at \(layout.directory): pass --data-dir or --media-dir")
            }
            let lines = options.data.json ? nil : ProgressLines()
            let report = try await withObjectStore(to) { bucket in
                let reporter = ProgressReporter("copying")
                defer { reporter.finish() }
                let migration = MediaMigration(source: LocalBlobStorage(layout: layout), destination: bucket,
                                               scratchDirectory: layout.temporaryDirectory)
                return try await maintenance { () async throws(MaintenanceError) in
                    try await migration.run { state in
                        reporter.update(state.bytesDone, total: state.bytesTotal)
                        lines?.show(state)
                    }
                }
            }
            if options.data.json {
                try printReport(report)
            } else {
                print("copied \(report.blobsCopied) blobs (\(formatBytes(report.bytesCopied))) and \(report.thumbnailsCopied) thumbnails; "
                      + "\(report.blobsSkipped) blobs and \(report.thumbnailsSkipped) thumbnails were there already"
                      + String(format: " (%.1f s)", report.seconds))
                for (label, items) in [("corrupted, not copied", report.corrupted), ("unreadable, not copied", report.unreadable)]
                where !items.isEmpty {
                    print("\(label): \(items.count)")
                    for item in items { print("  \(item)") }
                }
            }
            if report.problems > 0 { throw ExitCode(2) }
        }
    }
}

/// Progress as lines on stderr when it is not a terminal (a log, a CI job, `nohup`), where the bar is not drawn: at
/// most one a second, and the last.
final class ProgressLines: Sendable {
    private let last = Mutex<ContinuousClock.Instant?>(nil)

    init?() {
        guard isatty(STDERR_FILENO) == 0 else { return nil }
    }

    func show(_ state: MigrationProgress) {
        let now = ContinuousClock.now
        let due = last.withLock { last in
            guard state.objectsDone == state.objectsTotal || last.map({ now - $0 >= .seconds(1) }) ?? true else { return false }
            last = now
            return true
        }
        guard due else { return }
        let percent = state.bytesTotal > 0 ? Int(state.bytesDone * 100 / state.bytesTotal) : 100
        note("copying: \(state.objectsDone) of \(state.objectsTotal) objects, \(formatBytes(state.bytesDone)) of "
             + "\(formatBytes(state.bytesTotal)) (\(percent)%)")
    }
}
