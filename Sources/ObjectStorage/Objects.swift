import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFileSystem
import NIOHTTP1

/// What the store says about an object.
public struct ObjectInfo: Sendable, Equatable {
    public var key: String
    public var size: Int
    /// The ETag without its quotes (for single PUTs, S3's is the MD5 of the content; for multipart, not).
    public var etag: String?
    public var contentType: String?
}

/// An object being downloaded: its head, and its body as it arrives.
public struct ObjectDownload: Sendable {
    public var info: ObjectInfo
    /// The HTTP status: 200 for the whole object, 206 for a range.
    public var status: Int
    /// The bytes this answer carries, as the store said in Content-Range (nil for the whole object).
    public var range: ClosedRange<Int>?
    /// The body's length: the range's, or the whole object's.
    public var contentLength: Int
    public var body: ObjectBody
}

/// A download's bytes as they arrive. Backpressure: nothing more is read from the connection than the consumer
/// asks for, so a slow consumer holds a bounded amount of memory. Iterate it once. A failure in the middle
/// throws `ObjectStorageError.unavailable`; dropping it unread cancels the download.
public struct ObjectBody: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer
    let body: HTTPClientResponse.Body
    let operation: String
    let endpoint: String

    public struct AsyncIterator: AsyncIteratorProtocol {
        var inner: HTTPClientResponse.Body.AsyncIterator
        let operation: String
        let endpoint: String

        public mutating func next() async throws(ObjectStorageError) -> ByteBuffer? {
            do {
                return try await inner.next()
            } catch is CancellationError {
                throw .cancelled
            } catch {
                throw .unavailable(operation: operation, endpoint: endpoint, attempts: 1, cause: error)
            }
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(inner: body.makeAsyncIterator(), operation: operation, endpoint: endpoint)
    }
}

extension S3Client {
    /// The object's size and ETag, or nil when there is no such object.
    public func head(_ key: String) async throws(ObjectStorageError) -> ObjectInfo? {
        try Self.checkKey(key)
        return try await execute("HEAD \(key)", S3Request(method: .HEAD, key: key)) { response -> ObjectInfo? in
            switch response.status.code {
            case 404: return nil
            case 200..<300: return Self.info(key: key, response.headers, length: nil)
            default: throw try await self.errorResponse(response)
            }
        }
    }

    /// Starts downloading the object, or bytes `range` of it (offsets inclusive, as in HTTP); nil when there is no
    /// such object. A range beyond the object's end throws `.rejected` with S3's `InvalidRange`.
    public func get(_ key: String, range: ClosedRange<Int>? = nil) async throws(ObjectStorageError) -> ObjectDownload? {
        try Self.checkKey(key)
        guard range.map({ $0.lowerBound >= 0 }) ?? true else { throw .invalidKey("a range cannot start before 0") }
        var request = S3Request(method: .GET, key: key)
        if let range { request.headers.append((name: "Range", value: "bytes=\(range.lowerBound)-\(range.upperBound)")) }
        let operation = "GET \(key)"
        let endpoint = "\(location.endpoint)"
        return try await execute(operation, request) { response -> ObjectDownload? in
            let status = Int(response.status.code)
            if status == 404 {
                let error = try await self.errorResponse(response)
                // A missing bucket is a configuration problem, not a missing object.
                if error.code == "NoSuchBucket" { throw error }
                return nil
            }
            guard status == 200 || status == 206 else { throw try await self.errorResponse(response) }
            let length = response.headers.first(name: "content-length").flatMap { Int($0) }
            var served: ClosedRange<Int>?
            var total = length
            if status == 206 {
                guard let contentRange = response.headers.first(name: "content-range"),
                    let parsed = Self.parseContentRange(contentRange)
                else { throw ObjectStorageError.invalidResponse(operation: operation, detail: "206 without a readable Content-Range") }
                served = parsed.range
                total = parsed.total
            } else if range != nil {
                // A store that ignores Range would hand over the whole object where the caller expects a part.
                throw ObjectStorageError.invalidResponse(operation: operation, detail: "the store ignored the Range header")
            }
            guard let contentLength = length ?? served.map({ $0.count }) else {
                throw ObjectStorageError.invalidResponse(operation: operation, detail: "no Content-Length")
            }
            return ObjectDownload(
                info: Self.info(key: key, response.headers, length: total ?? contentLength), status: status,
                range: served, contentLength: contentLength,
                body: ObjectBody(body: response.body, operation: operation, endpoint: endpoint))
        }
    }

    /// Uploads the file at `path` as `key`, streaming it: one PUT up to `configuration.multipartThreshold`, a
    /// multipart upload above it (aborted on any failure; what an abort could not remove, `media gc` does). With
    /// `sha256` (the file's, lowercase hex), a single PUT is signed with it, so the store checks the bytes it
    /// receives. Returns what the store holds afterwards.
    @discardableResult
    public func put(_ key: String, fromFile path: String, contentType: String? = nil, sha256: String? = nil)
        async throws(ObjectStorageError) -> ObjectInfo
    {
        try Self.checkKey(key)
        let size: Int64
        do {
            size = try await FileSystem.shared.withFileHandle(forReadingAt: FilePath(path)) { try await $0.info().size }
        } catch {
            throw .file(path: path, cause: error)
        }
        if size > Int64(configuration.multipartThreshold) {
            return try await putMultipart(key, fromFile: path, size: size, contentType: contentType)
        }
        return try await putSingle(key, body: size == 0 ? .empty : .file(path: path, range: 0..<size, sha256: sha256), size: Int(size),
                                   contentType: contentType)
    }

    /// Uploads small bytes (a thumbnail) as `key` in one PUT, signed with their SHA-256.
    @discardableResult
    public func put(_ key: String, bytes: [UInt8], contentType: String? = nil) async throws(ObjectStorageError) -> ObjectInfo {
        try Self.checkKey(key)
        return try await putSingle(key, body: .bytes(Data(bytes)), size: bytes.count, contentType: contentType)
    }

    private func putSingle(_ key: String, body: S3Request.Body, size: Int, contentType: String?)
        async throws(ObjectStorageError) -> ObjectInfo
    {
        var request = S3Request(method: .PUT, key: key, body: body)
        if let contentType { request.headers.append((name: "Content-Type", value: contentType)) }
        let etag = try await execute("PUT \(key)", request) { response in
            _ = try await self.successBody(response)
            return Self.unquoted(response.headers.first(name: "etag"))
        }
        return ObjectInfo(key: key, size: size, etag: etag, contentType: contentType)
    }

    /// Removes the object. Removing an object that does not exist succeeds, as in S3.
    public func delete(_ key: String) async throws(ObjectStorageError) {
        try Self.checkKey(key)
        try await execute("DELETE \(key)", S3Request(method: .DELETE, key: key)) { response in
            _ = try await self.successBody(response)
        }
    }

    /// Copies `source` to `destination` on the store's side (objects up to 5 GiB), for moving an object aside
    /// without downloading it. False when there is no `source`.
    @discardableResult
    public func copy(from source: String, to destination: String) async throws(ObjectStorageError) -> Bool {
        try Self.checkKey(source)
        try Self.checkKey(destination)
        let copySource = SigV4Signer.uriEncode("/\(location.bucket)/\(source)", encodeSlash: false)
        let request = S3Request(method: .PUT, key: destination, headers: [(name: "x-amz-copy-source", value: copySource)])
        let operation = "copy \(source) to \(destination)"
        return try await execute(operation, request) { response -> Bool in
            if response.status.code == 404 {
                let error = try await self.errorResponse(response)
                guard error.code == "NoSuchKey" else { throw error }
                return false
            }
            let body = try await self.successBody(response)
            // Like CompleteMultipartUpload, a copy may fail after its 200 has been sent.
            guard let root = XMLNode.parse(body), root.name == "CopyObjectResult" else {
                throw S3ErrorResponse(status: Int(response.status.code), body: body,
                                      requestID: response.headers.first(name: "x-amz-request-id"))
            }
            return true
        }
    }

    /// Creates the bucket (in the location's region); a bucket that exists and is ours already is fine. For
    /// setting up self-hosted stores and tests: production buckets are usually made by their operators.
    public func createBucket() async throws(ObjectStorageError) {
        var request = S3Request(method: .PUT, key: nil)
        if location.region != "us-east-1" {
            request.body = .bytes(Data(("<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                + "<LocationConstraint>\(XMLNode.escape(location.region))</LocationConstraint></CreateBucketConfiguration>").utf8))
        }
        try await execute("create bucket \(location.bucket)", request) { response in
            if response.status.code == 409 {
                let error = try await self.errorResponse(response)
                guard error.code == "BucketAlreadyOwnedByYou" else { throw error }
                return
            }
            _ = try await self.successBody(response)
        }
    }

    static func checkKey(_ key: String) throws(ObjectStorageError) {
        guard !key.isEmpty, key.utf8.count <= 1024 else { throw .invalidKey("keys must have 1 to 1024 bytes") }
    }

    static func info(key: String, _ headers: HTTPHeaders, length: Int?) -> ObjectInfo {
        ObjectInfo(key: key, size: length ?? headers.first(name: "content-length").flatMap { Int($0) } ?? 0,
                   etag: unquoted(headers.first(name: "etag")), contentType: headers.first(name: "content-type"))
    }

    static func unquoted(_ etag: String?) -> String? {
        guard var etag else { return nil }
        if etag.hasPrefix("W/") { etag.removeFirst(2) }
        if etag.count >= 2, etag.hasPrefix("\""), etag.hasSuffix("\"") { etag = String(etag.dropFirst().dropLast()) }
        return etag
    }

    /// `bytes FIRST-LAST/TOTAL` (TOTAL may be `*`).
    static func parseContentRange(_ value: String) -> (range: ClosedRange<Int>, total: Int?)? {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        guard trimmed.hasPrefix("bytes ") else { return nil }
        let parts = trimmed.dropFirst(6).split(separator: "/", maxSplits: 1)
        guard parts.count == 2 else { return nil }
        let bounds = parts[0].split(separator: "-", maxSplits: 1)
        guard bounds.count == 2, let first = Int(bounds[0]), let last = Int(bounds[1]), first <= last else { return nil }
        return (first...last, Int(parts[1]))
    }
}
