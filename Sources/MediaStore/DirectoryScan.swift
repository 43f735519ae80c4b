#if canImport(Glibc)
import Glibc
#endif

/// A regular file found by a scan.
struct ScannedFile: Sendable, Equatable {
    /// Full path.
    var path: String
    /// Last path component.
    var name: String
    var size: Int64
    /// Modification time, epoch milliseconds.
    var modifiedAt: Int64
}

/// Lists files with opendir/readdir/lstat: no Foundation `FileManager`, whose per-file overhead dominates on stores
/// of 100,000 blobs.
enum DirectoryScan {
    /// Every regular file under `root`, at any depth. Symbolic links and other special files are not followed or
    /// listed (the store never makes them). A missing root is an empty list.
    static func files(under root: String) throws(BlobStorageError) -> [ScannedFile] {
        var result: [ScannedFile] = []
        try walk(root, into: &result)
        return result
    }

    private static func walk(_ directory: String, into result: inout [ScannedFile]) throws(BlobStorageError) {
        guard let handle = opendir(directory) else {
            if errno == ENOENT { return }
            throw .io(operation: "list", path: directory, errno: errno)
        }
        defer { closedir(handle) }
        var subdirectories: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name == "." || name == ".." { continue }
            let path = directory + "/" + name
            var info = stat()
            guard lstat(path, &info) == 0 else { continue }  // removed meanwhile (the server runs)
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                subdirectories.append(path)
            case S_IFREG:
                let modified = Int64(info.st_mtim.tv_sec) * 1000 + Int64(info.st_mtim.tv_nsec) / 1_000_000
                result.append(ScannedFile(path: path, name: name, size: Int64(info.st_size), modifiedAt: modified))
            default:
                continue
            }
        }
        for subdirectory in subdirectories {
            try walk(subdirectory, into: &result)
        }
    }
}
