import ArgumentParser
import Foundation
import MediaMaintenance
import MediaStore

extension ChatAdmin.Media {
    struct Migrate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy the local media directory into an S3-compatible bucket (resumable, idempotent).",
            discussion: """
                Copies every blob (re-hashed first: a corrupted file is reported, not copied) and thumbnail that the \
                bucket does not hold yet; run it again after an interruption, or to pick up files uploaded since. The \
                database does not change: keys are the same. Then restart the servers with --media-store. Exit code 2 \
                when corrupted blobs were found.
                """)

        @Option(help: "The bucket: s3://BUCKET/PREFIX?endpoint=http://HOST:PORT&region=REGION (credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or ~/.aws/credentials).")
        var to: String

        @OptionGroup var options: MediaOptions

        func run() async throws {
            let layout = options.layout
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: layout.directory, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw AdminFailure("no media directory at \(layout.directory): pass --data-dir or --media-dir")
            }
            let report = try await withObjectStore(to) { bucket in
                let reporter = ProgressReporter("copying")
                defer { reporter.finish() }
                return try await maintenance { () async throws(MaintenanceError) in
                    try await MediaMigration(source: LocalBlobStorage(layout: layout), destination: bucket).run { done, total in
                        reporter.update(done, total: total)
                    }
                }
            }
            if options.data.json {
                try printReport(report)
            } else {
                print("copied \(report.blobsCopied) blobs (\(formatBytes(report.bytesCopied))) and \(report.thumbnailsCopied) thumbnails; "
                      + "\(report.blobsSkipped) blobs and \(report.thumbnailsSkipped) thumbnails were there already"
                      + String(format: " (%.1f s)", report.seconds))
                if !report.corrupted.isEmpty {
                    print("corrupted, not copied: \(report.corrupted.count)")
                    for hash in report.corrupted { print("  \(hash)") }
                }
            }
            if !report.corrupted.isEmpty { throw ExitCode(2) }
        }
    }
}
