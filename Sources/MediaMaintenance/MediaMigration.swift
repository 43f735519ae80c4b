import ChatProtocol
import MediaStore
#if canImport(Glibc)
import Glibc
#endif

public struct MigrationReport: Sendable, Codable, Equatable {
    public var blobsCopied = 0
    public var bytesCopied: Int64 = 0
    /// Already in the destination with the same size (content addressed: the same bytes).
    public var blobsSkipped = 0
    public var thumbnailsCopied = 0
    public var thumbnailsSkipped = 0
    /// Blobs whose SHA-256 is not their name: not copied (`media verify --repair` deals with them).
    public var corrupted: [String] = []
    /// Blobs that could not be read, with why: not copied.
    public var unreadable: [String] = []
    public var seconds: Double = 0

    /// Blobs left behind because of their own bytes (the command exits 2).
    public var problems: Int { corrupted.count + unreadable.count }
}

/// Where a migration is, for progress: bytes over blobs and thumbnails, and objects.
public struct MigrationProgress: Sendable {
    public var bytesDone: Int64
    public var bytesTotal: Int64
    public var objectsDone: Int
    public var objectsTotal: Int
}

/// `chat-admin media migrate --to s3://...`: copies one storage's blobs and thumbnails into another. Idempotent and
/// resumable: what the destination holds already (same key, same size) is skipped, so a second run copies nothing
/// and an interrupted one picks up where it stopped. Each blob is streamed through `BlobStorage.read` into a local
/// copy, hashed on the way, and put only when the hash is its name, so corruption is not carried over. The catalog
/// is not touched: the keys are the same.
public struct MediaMigration: Sendable {
    let source: any BlobStorage
    let destination: any BlobStorage
    /// A local directory for the copies on their way (the media directory's `tmp/`).
    let scratchDirectory: String

    public init(source: any BlobStorage, destination: any BlobStorage, scratchDirectory: String) {
        self.source = source
        self.destination = destination
        self.scratchDirectory = scratchDirectory
    }

    public func run(progress: (MigrationProgress) -> Void = { _ in }) async throws(MaintenanceError) -> MigrationReport {
        let started = ContinuousClock.now
        var report = MigrationReport()
        let blobs: [StoredObject], thumbnails: [StoredObject]
        do {
            blobs = try await source.list(.blobs, prefix: "").collect().flatMap { $0 }.filter { $0.key != nil }
            thumbnails = try await source.list(.thumbnails, prefix: "").collect().flatMap { $0 }.filter { $0.key != nil }
        } catch {
            throw .wrap(error)
        }
        var state = MigrationProgress(bytesDone: 0, bytesTotal: (blobs + thumbnails).reduce(0) { $0 + $1.size },
                                      objectsDone: 0, objectsTotal: blobs.count + thumbnails.count)
        guard mkdir(scratchDirectory, 0o750) == 0 || errno == EEXIST else {
            throw .storage(.io(operation: "create", path: scratchDirectory, errno: errno))
        }
        for object in blobs {
            guard let key = object.key else { continue }
            do throws(BlobStorageError) {
                if try await destination.size(of: key) == Int(object.size) {
                    report.blobsSkipped += 1
                } else if try await copy(key, into: &report) {
                    report.blobsCopied += 1
                    report.bytesCopied += object.size
                }
            } catch {
                throw .storage(error)
            }
            state.bytesDone += object.size
            state.objectsDone += 1
            progress(state)
        }
        for object in thumbnails {
            guard let key = object.key else { continue }
            do {
                if try await destination.size(of: key) == Int(object.size) {
                    report.thumbnailsSkipped += 1
                } else {
                    let bytes = try await source.read(key, range: nil) { chunks in
                        var bytes: [UInt8] = []
                        for try await chunk in chunks { bytes += chunk.readableBytesView }
                        return bytes
                    }
                    try await destination.put(key, bytes: bytes)
                    report.thumbnailsCopied += 1
                }
            } catch {
                throw .wrap(error)
            }
            state.bytesDone += object.size
            state.objectsDone += 1
            progress(state)
        }
        report.corrupted.sort()
        report.unreadable.sort()
        report.seconds = (ContinuousClock.now - started).inSeconds
        return report
    }

    /// Copies one blob, verified; false when it was not copied (gone since the listing, corrupted or unreadable:
    /// the last two are in `report`). A local write or the destination failing stops the run.
    private func copy(_ key: BlobKey, into report: inout MigrationReport) async throws(BlobStorageError) -> Bool {
        let path = "\(scratchDirectory)/migrate-\(key.hash).tmp"
        defer { unlink(path) }  // consumed by a successful put; otherwise the copy goes
        let digest: BlobCopy.Digest?
        do {
            digest = try await BlobCopy.toFile(key, from: source, path: path)
        } catch {
            switch error {
            case .write(let cause): throw cause
            case .read(let cause):
                report.unreadable.append("\(key.hash): \(cause)")
                return false
            }
        }
        guard let digest else { return false }
        guard digest.sha256 == key.hash else {
            report.corrupted.append(key.hash)
            return false
        }
        try await destination.put(key, temporaryFile: path)
        return true
    }
}
