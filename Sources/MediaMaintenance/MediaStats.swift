import ChatStore
import GRDB
import MediaStore

/// What the media store holds: `chat-admin media stats`.
public struct MediaStats: Sendable, Codable, Equatable {
    public struct TypeTotal: Sendable, Codable, Equatable {
        public var type: String
        public var blobs: Int
        public var bytes: Int64
    }

    public struct UserTotal: Sendable, Codable, Equatable {
        public var user: String
        /// Finished uploads.
        public var uploads: Int
        /// Bytes those uploads sent (before deduplication).
        public var bytesUploaded: Int64
        /// Distinct blobs they stored or reused.
        public var distinctBlobs: Int
        /// Bytes of those distinct blobs still present.
        public var bytesPresent: Int64
    }

    /// Blobs whose bytes are in the store, and their bytes according to the database.
    public var blobs: Int
    public var bytesStored: Int64
    /// Blobs removed by prune or quarantined by verify --repair (their metadata stays).
    public var pruned: Int
    public var quarantined: Int
    /// Files and bytes actually under `blobs/` and `thumbs/` (the two differ from the database only when verify has
    /// something to report).
    public var blobFiles: Int
    public var blobFileBytes: Int64
    public var thumbnails: Int
    public var thumbnailBytes: Int64
    /// Attachments pointing at present blobs, and the bytes they would take without deduplication.
    public var attachments: Int
    public var bytesReferenced: Int64
    /// Bytes not stored thanks to deduplication: for each referenced blob, its size times (references - 1).
    public var dedupSavings: Int64
    /// Present blobs with no attachment (uploaded but never sent, or whose messages are gone).
    public var unreferencedBlobs: Int
    public var unreferencedBytes: Int64
    /// Creation times (epoch ms) of the oldest and newest present blob.
    public var oldest: Int64?
    public var newest: Int64?
    public var byType: [TypeTotal]
    /// Filled when asked for (`--by-user`).
    public var byUser: [UserTotal]?
}

/// Computes `MediaStats` from the catalog (aggregate SQL, no per-blob work) and one scan of the directories.
public struct MediaStatistics: Sendable {
    let database: ChatDatabase
    let layout: MediaLayout

    public init(database: ChatDatabase, layout: MediaLayout) {
        self.database = database
        self.layout = layout
    }

    public func compute(byUser: Bool) async throws(MaintenanceError) -> MediaStats {
        let layout = self.layout
        let files: (blobs: [ScannedFile], thumbnails: [ScannedFile])
        do {
            files = try await MediaStore.runBlocking {
                (try DirectoryScan.files(under: layout.blobsDirectory), try DirectoryScan.files(under: layout.thumbnailsDirectory))
            }
        } catch {
            throw .wrap(error)
        }
        do {
            return try await database.pool.read { db in
                let present = try Row.fetchOne(db, sql: """
                    SELECT count(*) AS n, coalesce(sum(size), 0) AS bytes, min(created_at) AS oldest, max(created_at) AS newest
                    FROM blobs WHERE state = 'present'
                    """)
                let states = try Row.fetchAll(db, sql: "SELECT state, count(*) AS n FROM blobs GROUP BY state")
                func count(_ state: BlobState) -> Int {
                    states.first { $0["state"] == state.rawValue }.map { $0["n"] as Int } ?? 0
                }
                let references = try Row.fetchOne(db, sql: """
                    SELECT count(*) AS n, coalesce(sum(b.size), 0) AS bytes
                    FROM attachments a JOIN blobs b ON b.hash = a.blob_hash WHERE b.state = 'present'
                    """)
                let referencedStored = try Int64.fetchOne(db, sql: """
                    SELECT coalesce(sum(size), 0) FROM blobs b
                    WHERE state = 'present' AND EXISTS (SELECT 1 FROM attachments a WHERE a.blob_hash = b.hash)
                    """) ?? 0
                let unreferenced = try Row.fetchOne(db, sql: """
                    SELECT count(*) AS n, coalesce(sum(size), 0) AS bytes FROM blobs b
                    WHERE state = 'present' AND NOT EXISTS (SELECT 1 FROM attachments a WHERE a.blob_hash = b.hash)
                    """)
                let byType = try Row.fetchAll(db, sql: """
                    SELECT mime_type, count(*) AS n, sum(size) AS bytes FROM blobs WHERE state = 'present'
                    GROUP BY mime_type ORDER BY bytes DESC, mime_type
                    """).map { MediaStats.TypeTotal(type: $0["mime_type"], blobs: $0["n"], bytes: $0["bytes"]) }
                var users: [MediaStats.UserTotal]?
                if byUser {
                    // Two grouped scans joined in Swift: a correlated subquery per user was quadratic.
                    var present: [String: (blobs: Int, bytes: Int64)] = [:]
                    for row in try Row.fetchAll(db, sql: """
                        SELECT ub.username, count(*) AS distinct_blobs,
                               coalesce(sum(CASE WHEN b.state = 'present' THEN b.size ELSE 0 END), 0) AS present
                        FROM (SELECT DISTINCT username, blob_hash FROM uploads WHERE state = 'done') ub
                        JOIN blobs b ON b.hash = ub.blob_hash GROUP BY ub.username
                        """) {
                        present[row["username"]] = (row["distinct_blobs"], row["present"])
                    }
                    users = try Row.fetchAll(db, sql: """
                        SELECT username, count(*) AS uploads, sum(size) AS uploaded FROM uploads WHERE state = 'done'
                        GROUP BY username ORDER BY uploaded DESC, username
                        """).map { row in
                            let user: String = row["username"]
                            return MediaStats.UserTotal(user: user, uploads: row["uploads"], bytesUploaded: row["uploaded"],
                                                        distinctBlobs: present[user]?.blobs ?? 0, bytesPresent: present[user]?.bytes ?? 0)
                        }
                }
                let referencedBytes: Int64 = references?["bytes"] ?? 0
                return MediaStats(
                    blobs: present?["n"] ?? 0, bytesStored: present?["bytes"] ?? 0,
                    pruned: count(.pruned), quarantined: count(.quarantined),
                    blobFiles: files.blobs.count, blobFileBytes: files.blobs.reduce(0) { $0 + $1.size },
                    thumbnails: files.thumbnails.count, thumbnailBytes: files.thumbnails.reduce(0) { $0 + $1.size },
                    attachments: references?["n"] ?? 0, bytesReferenced: referencedBytes,
                    dedupSavings: referencedBytes - referencedStored,
                    unreferencedBlobs: unreferenced?["n"] ?? 0, unreferencedBytes: unreferenced?["bytes"] ?? 0,
                    oldest: present?["oldest"], newest: present?["newest"], byType: byType, byUser: users)
            }
        } catch {
            throw .wrap(error)
        }
    }
}
