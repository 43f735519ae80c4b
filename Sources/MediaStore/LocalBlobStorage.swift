import ChatStore
import NIOCore
import NIOPosix
import _NIOFileSystem
#if canImport(Glibc)
import Glibc
#endif

/// The content-addressed media directory (see `MediaLayout`): blobs under `blobs/sha256/ab/cd/<hex>`, thumbnails
/// under `thumbs/ab/cd/`, removals through `trash/` and `quarantine/`. File work runs on the media pool; reads stream
/// through NIO's file system on its own pool, as Hummingbird serves files.
public struct LocalBlobStorage: BlobStorage {
    public let layout: MediaLayout
    let writer: any MediaFileWriter
    private let fileSystem = FileSystem(threadPool: .singleton)
    static let chunkLength = 128 * 1024

    /// `writer` writes and syncs files (tests substitute one that fails like a full disk).
    public init(layout: MediaLayout, writer: any MediaFileWriter = POSIXFileWriter()) {
        self.layout = layout
        self.writer = writer
    }

    /// Creates the directories a server writes to (maintenance works on an existing store and does not).
    public func prepare() throws(BlobStorageError) {
        for directory in [layout.blobsDirectory, layout.thumbnailsDirectory, layout.temporaryDirectory] {
            let (error, _) = POSIX.makeDirectories(directory)
            if error != 0 { throw .io(operation: "create", path: directory, errno: error) }
        }
    }

    /// Where an object lives.
    func path(_ key: BlobKey) -> String {
        switch key.kind {
        case .blob: layout.blobPath(key.hash)
        case .thumbnail(let size, let type): layout.thumbnailPath(key.hash, size: size, type: type)
        }
    }

    // MARK: Writing

    public func put(_ key: BlobKey, temporaryFile temporary: String) async throws(BlobStorageError) {
        let destination = path(key)
        let writer = self.writer
        try await MediaWorkers.run({ () -> Result<Void, BlobStorageError> in
            // Durable before visible: the bytes, then the rename and any new fan-out directories.
            let syncError = POSIX.syncFile(temporary, with: writer)
            guard syncError == 0 else { return .failure(.io(operation: "fsync", path: temporary, errno: syncError)) }
            let parent = POSIX.parent(of: destination)
            let (mkdirError, created) = POSIX.makeDirectories(parent)
            guard mkdirError == 0 else { return .failure(.io(operation: "create blob directory", path: parent, errno: mkdirError)) }
            guard rename(temporary, destination) == 0 else {
                return .failure(.io(operation: "rename into the store", path: destination, errno: errno))
            }
            for directory in [parent] + created.map(POSIX.parent(of:)) {
                let error = POSIX.syncDirectory(directory)
                guard error == 0 else { return .failure(.io(operation: "fsync directory", path: directory, errno: error)) }
            }
            return .success(())
        }, stopped: .poolStopped)
    }

    public func put(_ key: BlobKey, bytes: [UInt8]) async throws(BlobStorageError) {
        let destination = path(key)
        let temporary = "\(layout.temporaryDirectory)/thumb-\(UploadIds.make()).tmp"
        let writer = self.writer
        try await MediaWorkers.run({ () -> Result<Void, BlobStorageError> in
            let parent = POSIX.parent(of: destination)
            let (mkdirError, _) = POSIX.makeDirectories(parent)
            guard mkdirError == 0 else { return .failure(.io(operation: "create thumbnail directory", path: parent, errno: mkdirError)) }
            if let failure = POSIX.writeAtomically(bytes, to: destination, temporary: temporary, writer: writer) {
                return .failure(.io(operation: failure.operation, path: destination, errno: failure.errno))
            }
            return .success(())
        }, stopped: .poolStopped)
    }

    // MARK: Reading

    public func size(of key: BlobKey) async throws(BlobStorageError) -> Int? {
        let path = self.path(key)
        return try await MediaWorkers.run({ () -> Result<Int?, BlobStorageError> in
            var info = stat()
            if stat(path, &info) == 0 { return .success(Int(info.st_size)) }
            return errno == ENOENT || errno == ENOTDIR ? .success(nil) : .failure(.io(operation: "stat", path: path, errno: errno))
        }, stopped: .poolStopped)
    }

    public func read<T: Sendable>(_ key: BlobKey, range: Range<Int>?, _ body: (BlobByteStream) async throws -> T) async throws -> T {
        let path = self.path(key)
        let handle: ReadFileHandle
        do {
            handle = try await fileSystem.openFile(forReadingAt: FilePath(path))
        } catch let error as FileSystemError where error.code == .notFound {
            throw BlobStorageError.notFound(key)
        }
        let result: Result<T, any Error>
        do {
            let chunks = range.map { handle.readChunks(in: Int64($0.lowerBound)..<Int64($0.upperBound), chunkLength: .bytes(Int64(Self.chunkLength))) }
                ?? handle.readChunks(in: 0..., chunkLength: .bytes(Int64(Self.chunkLength)))
            result = .success(try await body(BlobByteStream(chunks)))
        } catch {
            result = .failure(error)
        }
        try? await handle.close()
        return try result.get()
    }

    // MARK: Listing

    public func list(_ area: BlobArea, prefix: String) -> BlobListing {
        let layout = self.layout
        let root = switch area {
        case .blobs: layout.blobsDirectory
        case .thumbnails: layout.thumbnailsDirectory
        case .setAside: layout.trashDirectory
        }
        // The fan-out directories narrow a long enough prefix to one directory.
        let start = area != .setAside && prefix.utf8.count >= 4 ? "\(root)/\(layout.fanOut(prefix))" : root
        return BlobListing(single: { () async throws -> [StoredObject] in
            let files = try await MediaWorkers.run({ () -> Result<[ScannedFile], BlobStorageError> in
                Result { () throws(BlobStorageError) in try DirectoryScan.files(under: start) }
            }, stopped: .poolStopped)
            return files.filter { $0.name.hasPrefix(prefix) }.map { file in
                StoredObject(key: Self.key(of: file, in: area, layout: layout), location: file.path, name: file.name,
                             size: file.size, modifiedAt: file.modifiedAt)
            }
        })
    }

    /// The key a listed file stands for, if its name makes one and it is where that key belongs (trash is flat).
    static func key(of file: ScannedFile, in area: BlobArea, layout: MediaLayout) -> BlobKey? {
        let name = file.name
        if name.utf8.count == 64 {
            guard let key = try? BlobKey(blob: name), area != .thumbnails else { return nil }
            return area == .setAside || layout.blobPath(name) == file.path ? key : nil
        }
        // "<hash>-<size>.<png|jpg>"
        guard area != .blobs, let dot = name.lastIndex(of: "."), name.distance(from: name.startIndex, to: dot) > 65 else { return nil }
        let stem = name[..<dot], ext = name[name.index(after: dot)...]
        let type = ext == "png" ? "image/png" : ext == "jpg" ? "image/jpeg" : ""
        guard !type.isEmpty, stem.dropFirst(64).first == "-",
              let key = try? BlobKey(thumbnailOf: String(stem.prefix(64)), size: String(stem.dropFirst(65)), type: type) else { return nil }
        return area == .setAside || layout.thumbnailPath(key.hash, size: String(stem.dropFirst(65)), type: type) == file.path ? key : nil
    }

    // MARK: Removing

    public func remove(_ object: StoredObject) async throws(BlobStorageError) {
        let path = object.location
        try await MediaWorkers.run({ () -> Result<Void, BlobStorageError> in
            unlink(path) == 0 || errno == ENOENT ? .success(()) : .failure(.io(operation: "remove", path: path, errno: errno))
        }, stopped: .poolStopped)
    }

    public func quarantine(_ object: StoredObject) async throws(BlobStorageError) {
        let quarantine = layout.quarantineDirectory
        let target = "\(quarantine)/stray-\(object.name).\(epochMilliseconds())"
        try await move(object.location, to: target, creating: quarantine)
    }

    public func restore(_ object: StoredObject, as key: BlobKey) async throws(BlobStorageError) {
        let destination = path(key)
        try await move(object.location, to: destination, creating: POSIX.parent(of: destination))
    }

    private func move(_ from: String, to: String, creating directory: String) async throws(BlobStorageError) {
        try await MediaWorkers.run({ () -> Result<Void, BlobStorageError> in
            _ = POSIX.makeDirectories(directory)
            return rename(from, to) == 0 ? .success(()) : .failure(.io(operation: "move", path: from, errno: errno))
        }, stopped: .poolStopped)
    }

    public func beginRemoval(_ disposal: BlobDisposal) -> any BlobRemovalBatch {
        LocalRemovalBatch(storage: self, disposal: disposal)
    }
}

extension LocalBlobStorage {
    public func sha256(of objects: [StoredObject], progress: @escaping @Sendable (Int64) -> Void) async -> [Result<String?, BlobStorageError>] {
        await BlobDigests.local(objects, progress: progress)
    }
}
