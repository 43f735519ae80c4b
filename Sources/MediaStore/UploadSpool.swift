import Crypto
#if canImport(Glibc)
import Glibc
#endif

/// The local temporary files uploads stream into (`tmp/<upload id>.part`), hashed and sniffed on the way, until a
/// finished one is put into the blob storage. All of it runs on the media pool.
public struct UploadSpool: Sendable {
    let layout: MediaLayout

    public init(layout: MediaLayout) {
        self.layout = layout
    }

    /// Every file in the spool (`media gc`); they have no key.
    public func files() async throws(BlobStorageError) -> [StoredObject] {
        let directory = layout.temporaryDirectory
        return try await MediaWorkers.run({ () -> Result<[StoredObject], BlobStorageError> in
            Result { () throws(BlobStorageError) in
                try DirectoryScan.files(under: directory).map {
                    StoredObject(key: nil, location: $0.path, name: $0.name, size: $0.size, modifiedAt: $0.modifiedAt)
                }
            }
        }, stopped: .poolStopped)
    }

    /// Removes a file `files()` listed.
    public func remove(_ file: StoredObject) async {
        let path = file.location
        try? await MediaWorkers.run({ () -> Result<Void, BlobStorageError> in
            unlink(path)
            return .success(())
        }, stopped: .poolStopped)
    }

    func path(upload id: String) -> String { layout.temporaryPath(upload: id) }

    /// Creates a new upload's file, open for appending.
    func create(upload id: String) async throws(MediaError) -> Int32 {
        let path = path(upload: id)
        return try await MediaWorkers.run({ () -> Result<Int32, MediaError> in
            let fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o640)
            return fd >= 0 ? .success(fd) : .failure(.storage(operation: "create temporary file", errno: errno))
        }, stopped: .poolStopped)
    }

    /// Opens an interrupted upload's file again and hashes what it holds: the file, the hasher and the offset.
    func reopen(upload id: String) async throws(MediaError) -> (fd: Int32, hasher: SendableHasher, offset: Int) {
        let path = path(upload: id)
        return try await MediaWorkers.run({ () -> Result<(fd: Int32, hasher: SendableHasher, offset: Int), MediaError> in
            let fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC)
            guard fd >= 0 else { return .failure(.storage(operation: "reopen temporary file", errno: errno)) }
            var hasher = SHA256()
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            switch FileHashing.update(&hasher, from: fd, buffer: &buffer) {
            case .success(let total):
                return .success((fd, SendableHasher(hasher: hasher), total))
            case .failure(let error):
                close(fd)
                return .failure(.storage(operation: "read temporary file", errno: error.code))
            }
        }, stopped: .poolStopped)
    }

    /// Removes an upload's file, if there is one.
    func remove(upload id: String) async {
        let path = path(upload: id)
        try? await MediaWorkers.run({ () -> Result<Void, MediaError> in
            unlink(path)
            return .success(())
        }, stopped: .poolStopped)
    }

    /// Closes a discarded upload's file and removes it.
    func discard(_ upload: Upload) async {
        try? await MediaWorkers.run({ () -> Result<Void, MediaError> in
            upload.closeFile()
            unlink(upload.path)
            return .success(())
        }, stopped: .poolStopped)
    }

    /// The type of a sealed upload, sniffed from its first bytes.
    func sniffType(of upload: Upload, with sniffer: MagicSniffer) async throws(MediaError) -> String {
        let path = upload.path
        return try await MediaWorkers.run({ () -> Result<String, MediaError> in
            let (error, prefix) = POSIX.readPrefix(path, count: MagicSniffer.prefixBytes)
            guard error == 0 else { return .failure(.storage(operation: "read temporary file", errno: error)) }
            return .success(sniffer.mimeType(of: prefix))
        }, stopped: .poolStopped)
    }

    /// Removes every file but those named in `keep`. Returns how many went.
    func removeAll(keeping keep: Set<String>) async throws(MediaError) -> Int {
        let directory = layout.temporaryDirectory
        return try await MediaWorkers.run({ () -> Result<Int, MediaError> in
            guard let dir = opendir(directory) else { return .failure(.storage(operation: "list \(directory)", errno: errno)) }
            defer { closedir(dir) }
            var names: [String] = []
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
                }
                if name != "." && name != ".." && !keep.contains(name) { names.append(name) }
            }
            for name in names { unlink(directory + "/" + name) }
            return .success(names.count)
        }, stopped: .poolStopped)
    }
}
