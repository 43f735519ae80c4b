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
    /// Blob files whose SHA-256 is not their name: not copied (`media verify --repair` deals with them).
    public var corrupted: [String] = []
    public var seconds: Double = 0
}

/// `chat-admin media migrate --to s3://...`: copies the local media directory's blobs and thumbnails into another
/// storage. Idempotent and resumable: what the destination holds already (same key, same size) is skipped, so a
/// second run copies nothing and an interrupted one picks up where it stopped. Each blob is re-hashed before it is
/// copied, so corruption on disk is not carried over. The catalog is not touched: the keys are the same.
public struct MediaMigration: Sendable {
    let source: LocalBlobStorage
    let destination: any BlobStorage

    public init(source: LocalBlobStorage, destination: any BlobStorage) {
        self.source = source
        self.destination = destination
    }

    /// `progress(bytesDone, bytesTotal)` over blobs and thumbnails.
    public func run(progress: (Int64, Int64) -> Void = { _, _ in }) async throws(MaintenanceError) -> MigrationReport {
        let started = ContinuousClock.now
        var report = MigrationReport()
        let blobs: [StoredObject], thumbnails: [StoredObject]
        do {
            blobs = try await source.list(.blobs, prefix: "").collect().flatMap { $0 }.filter { $0.key != nil }
            thumbnails = try await source.list(.thumbnails, prefix: "").collect().flatMap { $0 }.filter { $0.key != nil }
        } catch {
            throw .wrap(error)
        }
        let total = (blobs + thumbnails).reduce(0) { $0 + $1.size }
        var done: Int64 = 0
        let temporary = source.layout.temporaryDirectory
        mkdir(temporary, 0o750)
        for object in blobs {
            guard let key = object.key else { continue }
            do throws(BlobStorageError) {
                if try await destination.size(of: key) == Int(object.size) {
                    report.blobsSkipped += 1
                } else if case .success(let hash) = await source.sha256(of: [object], progress: { _ in }).first, hash != nil, hash != key.hash {
                    report.corrupted.append(key.hash)
                } else {
                    // The destination consumes the file it puts: give it a second link to the blob, not the blob.
                    let link = "\(temporary)/migrate-\(key.hash).tmp"
                    do {
                        try await MediaStore.runBlocking {
                            unlink(link)
                            guard Glibc.link(object.location, link) == 0 else {
                                throw BlobStorageError.io(operation: "link", path: link, errno: errno)
                            }
                        }
                    } catch let error as BlobStorageError {
                        throw error
                    } catch {
                        throw BlobStorageError.io(operation: "link", path: link, errno: ECANCELED)
                    }
                    do {
                        try await destination.put(key, temporaryFile: link)
                    } catch {
                        _ = try? await MediaStore.runBlocking { unlink(link) }
                        throw error
                    }
                    report.blobsCopied += 1
                    report.bytesCopied += object.size
                }
            } catch {
                throw .storage(error)
            }
            done += object.size
            progress(done, total)
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
            done += object.size
            progress(done, total)
        }
        report.corrupted.sort()
        report.seconds = (ContinuousClock.now - started).inSeconds
        return report
    }
}
