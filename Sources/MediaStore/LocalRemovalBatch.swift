import ChatStore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A removal from the local directory: files are moved (blobs to `trash/` or `quarantine/`, thumbnails to `trash/`),
/// never unlinked inside the catalog's transaction, so a failed commit can put them back; the trash is emptied once
/// it has committed. `media gc` restores or empties what a crash left in `trash/`.
final class LocalRemovalBatch: BlobRemovalBatch {
    private let storage: LocalBlobStorage
    private let disposal: BlobDisposal
    private let stamp = epochMilliseconds()
    /// Written by the database's writer thread inside the transaction, read after it returns.
    private let moves = Mutex<[(from: String, to: String)]>([])

    init(storage: LocalBlobStorage, disposal: BlobDisposal) {
        self.storage = storage
        self.disposal = disposal
        for directory in [storage.layout.trashDirectory, storage.layout.quarantineDirectory] {
            mkdir(directory, 0o750)
        }
    }

    func setAside(_ key: BlobKey) throws(BlobStorageError) {
        let layout = storage.layout
        let from = storage.path(key)
        let to: String = switch (key.kind, disposal) {
        case (.blob, .quarantine): "\(layout.quarantineDirectory)/\(key.hash).\(stamp)"
        default: layout.trashDirectory + "/" + lastComponent(from)
        }
        // A file that is not there (already gone, or a blob without thumbnails) is not an error.
        if rename(from, to) == 0 {
            moves.withLock { $0.append((from, to)) }
        } else if errno != ENOENT {
            throw .io(operation: "move", path: from, errno: errno)
        }
    }

    func contains(_ key: BlobKey) -> Bool {
        access(storage.path(key), F_OK) == 0
    }

    func undo() async {
        let moves = self.moves.withLock { $0 }
        _ = try? await MediaStore.runBlocking {
            for move in moves.reversed() { rename(move.to, move.from) }
        }
    }

    func finish() async {
        let trash = storage.layout.trashDirectory + "/"
        let trashed = moves.withLock { $0.map(\.to) }.filter { $0.hasPrefix(trash) }
        _ = try? await MediaStore.runBlocking { for path in trashed { unlink(path) } }
    }
}

func lastComponent(_ path: String) -> String {
    path.split(separator: "/").last.map(String.init) ?? path
}
