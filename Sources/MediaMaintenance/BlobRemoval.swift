import ChatStore
import GRDB
import MediaStore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Takes blobs' bytes out of the store while the server runs: the remover's half of the deletion protocol described
/// on `MediaCatalog`. For each blob, inside one write transaction: re-check that it is still eligible (criteria
/// evaluated against the committed state, so a reference made a moment ago keeps it), move its files out of
/// `blobs/` and `thumbs/`, and mark the row. The server's touch-before-trust waits for that transaction, then sees
/// the blob as absent and stores its own copy; a touch that came first makes the re-check fail.
///
/// Files are moved (to `trash/` or `quarantine/`), never unlinked inside the transaction, so a failed commit can put
/// them back; trash is emptied once the transaction has committed. `media gc` restores or empties what a crash left
/// in `trash/`.
struct BlobRemoval: Sendable {
    let database: ChatDatabase
    let layout: MediaLayout

    enum Disposal: Sendable {
        /// Into `trash/`, deleted after the commit (prune).
        case delete
        /// Into `quarantine/` for an operator to inspect (verify --repair).
        case quarantine
    }

    /// Blobs per write transaction: short enough that the server's writes wait only milliseconds.
    static let batchSize = 200

    /// Removes those of `hashes` that `stillEligible` (run inside the transaction) accepts. Returns them.
    func remove(_ hashes: [String], to state: BlobState, disposal: Disposal, keepThumbnails: Bool,
                stillEligible: @escaping @Sendable (Database, String) throws -> Bool,
                progress: (Int) -> Void = { _ in }) async throws(MaintenanceError) -> [String] {
        for directory in [layout.trashDirectory, layout.quarantineDirectory] {
            mkdir(directory, 0o750)
        }
        var removed: [String] = []
        var start = 0
        // Emptying a batch's trash overlaps the next batch's transaction (at most one batch behind), so the unlinks
        // cost no wall time on a machine with a second core.
        var emptying: Task<Void, Never>?
        while start < hashes.count {
            let batch = Array(hashes[start..<min(start + Self.batchSize, hashes.count)])
            start += batch.count
            let log = MoveLog()
            let layout = self.layout
            let now = epochMilliseconds()
            do {
                let done = try await database.pool.write { db -> [String] in
                    var done: [String] = []
                    // Cached statements: preparing (and GRDB's authorizer) per blob was a third of the time.
                    let select = try db.cachedStatement(sql: "SELECT * FROM blobs WHERE hash = ?")
                    let update = try db.cachedStatement(sql: """
                        UPDATE blobs SET state = ?, removed_at = ?, thumbnails = CASE WHEN ? THEN thumbnails ELSE '[]' END
                        WHERE hash = ?
                        """)
                    for hash in batch where try stillEligible(db, hash) {
                        guard let row = try Row.fetchOne(select, arguments: [hash]) else { continue }
                        let blob = BlobRecord(row: row)
                        let target = disposal == .delete ? "\(layout.trashDirectory)/\(hash)"
                                                         : "\(layout.quarantineDirectory)/\(hash).\(now)"
                        try log.move(layout.blobPath(hash), to: target)
                        if !keepThumbnails {
                            for thumbnail in blob.thumbnails {
                                let path = layout.thumbnailPath(hash, size: thumbnail.size, type: thumbnail.type)
                                try log.move(path, to: layout.trashDirectory + "/" + lastComponent(path))
                            }
                        }
                        try update.execute(arguments: [state.rawValue, now, keepThumbnails, hash])
                        done.append(hash)
                    }
                    return done
                }
                removed += done
            } catch {
                log.undo()
                throw .wrap(error)
            }
            // Committed: what went to the trash can go for good.
            let trashed = log.destinations.filter { $0.hasPrefix(layout.trashDirectory + "/") }
            await emptying?.value
            emptying = Task { _ = try? await MediaStore.runBlocking { for path in trashed { unlink(path) } } }
            progress(start)
        }
        await emptying?.value
        return removed
    }
}

/// File moves made inside one transaction, so they can be undone if it does not commit. Written by the database's
/// writer thread, read after the write returns.
private final class MoveLog: Sendable {
    private let moves = Mutex<[(from: String, to: String)]>([])

    /// Moves a file; a file that is not there (already gone, or a blob without thumbnails) is not an error.
    func move(_ from: String, to: String) throws(MaintenanceError) {
        if rename(from, to) == 0 {
            moves.withLock { $0.append((from, to)) }
        } else if errno != ENOENT {
            throw .io(operation: "move", path: from, errno: errno)
        }
    }

    var destinations: [String] { moves.withLock { $0.map(\.to) } }

    func undo() {
        for move in moves.withLock({ $0 }).reversed() {
            rename(move.to, move.from)
        }
    }
}

func lastComponent(_ path: String) -> String {
    path.split(separator: "/").last.map(String.init) ?? path
}
