import ChatStore
import MediaStore

/// Computes `MediaStats` from the catalog (aggregate SQL, no per-blob work) and one listing of the storage.
public struct MediaStatistics: Sendable {
    let catalog: any MediaCatalog
    let storage: any BlobStorage

    public init(catalog: any MediaCatalog, storage: any BlobStorage) {
        self.catalog = catalog
        self.storage = storage
    }

    public func compute(byUser: Bool) async throws(MaintenanceError) -> MediaStats {
        let blobs: [StoredObject], thumbnails: [StoredObject]
        var stats: MediaStats
        do {
            blobs = try await storage.list(.blobs, prefix: "").collect().flatMap { $0 }
            thumbnails = try await storage.list(.thumbnails, prefix: "").collect().flatMap { $0 }
            stats = try await catalog.stats(byUser: byUser)
        } catch {
            throw .wrap(error)
        }
        stats.blobFiles = blobs.count
        stats.blobFileBytes = blobs.reduce(0) { $0 + $1.size }
        stats.thumbnails = thumbnails.count
        stats.thumbnailBytes = thumbnails.reduce(0) { $0 + $1.size }
        return stats
    }
}
