import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOFileSystem
import NIOHTTP1

/// A client for one bucket of an S3-compatible store (AWS S3, MinIO, Ceph RGW, Garage): object head, streamed get
/// (ranges too), put from a file (multipart above a threshold), delete, paged listing. One shared `HTTPClient`
/// keeps connections alive between requests; call `shutdown()` once done.
///
/// Keys are whole keys within the bucket: the location's prefix is not added here but by the key helpers
/// (`S3Location.key`, `blobKey`, `thumbnailKey`), so a listing's keys can be passed back as they are.
///
/// Every operation retries per `configuration.retry` when the store is unreachable or answers 5xx, then throws
/// `ObjectStorageError.unavailable`; a 4xx answer throws `.rejected` at once with S3's error code and message.
public final class S3Client: Sendable {
    public let configuration: S3Configuration
    let http: HTTPClient
    let logger: Logger
    let signer: SigV4Signer

    public init(configuration: S3Configuration, logger: Logger = Logger(label: "ObjectStorage")) {
        self.configuration = configuration
        self.logger = logger
        signer = SigV4Signer(credentials: configuration.credentials, region: configuration.location.region)
        var http = HTTPClient.Configuration()
        // A redirect (S3 sends one for a bucket in another region) would need signing again; better to fail
        // with S3's error, whose hint points at the region.
        http.redirectConfiguration = .disallow
        // The pool would otherwise keep trying to connect until the connect timeout, silently, on every attempt:
        // the retry policy decides instead, with its bounded attempts, backoff and log lines.
        http.connectionPool.retryConnectionEstablishment = false
        http.timeout = HTTPClient.Configuration.Timeout(connect: TimeAmount(configuration.connectTimeout),
                                                        read: TimeAmount(configuration.readTimeout))
        self.http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: http)
    }

    /// Closes the connections. Call it exactly once, after the last request.
    public func shutdown() async throws {
        try await http.shutdown()
    }

    var location: S3Location { configuration.location }
}

// MARK: Requests, signing, retries

/// One request to the bucket, before signing.
struct S3Request: Sendable {
    var method: HTTPMethod
    /// The object's key; nil for requests on the bucket itself.
    var key: String?
    var query: [(name: String, value: String)] = []
    var headers: [(name: String, value: String)] = []
    var body: Body = .empty

    enum Body: Sendable {
        case empty
        /// A small body, signed with its SHA-256.
        case bytes(Data)
        /// Bytes `range` of a file, streamed and not read whole. Signed with `sha256` (lowercase hex) when the
        /// caller knows the bytes' hash (a content-addressed blob: its key), so the store refuses bytes that are not
        /// those (XAmzContentSHA256Mismatch). Otherwise `UNSIGNED-PAYLOAD`: hashing first would read the file twice
        /// for every attempt, as it would for each part of a multipart upload, whose hash nobody knows beforehand.
        case file(path: String, range: Range<Int64>, sha256: String? = nil)
    }
}

/// A file read failing under a request: not the store's fault, so not retried.
struct FileReadFailure: Error {
    var path: String
    var cause: any Error
}

/// A file's bytes as a request body, with read errors marked as the file's.
struct FileBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let chunks: FileChunks
    let path: String

    struct AsyncIterator: AsyncIteratorProtocol {
        var inner: FileChunks.AsyncIterator
        let path: String

        mutating func next() async throws -> ByteBuffer? {
            do { return try await inner.next() } catch { throw FileReadFailure(path: path, cause: error) }
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(inner: chunks.makeAsyncIterator(), path: path) }
}

extension S3Client {
    /// Sends `request` and gives the answer's head to `handle`, retrying (with the body sent again) while the store
    /// is unreachable or answers 5xx, 429 or SlowDown. `handle` sees every other answer; an error it throws that
    /// is an `S3ErrorResponse` with `isRetryable` is retried too. For a file body, `handle` runs while the file is
    /// open, so it should read what it needs of a small answer there.
    func execute<T: Sendable>(_ operation: String, _ request: S3Request,
                              handle: (HTTPClientResponse) async throws -> T) async throws(ObjectStorageError) -> T {
        var attempt = 1
        while true {
            do {
                return try await attemptOnce(request, handle: handle)
            } catch {
                if let final = finalError(error, operation: operation) { throw final }
                guard attempt < configuration.retry.attempts else {
                    throw .unavailable(operation: operation, endpoint: "\(location.endpoint)", attempts: attempt, cause: error)
                }
                let delay = configuration.retry.backoff(after: attempt)
                logger.warning("object store request failed; retrying", metadata: [
                    "operation": "\(operation)", "attempt": "\(attempt)", "cause": "\(error)", "retry_in_ms": "\(Int(delay / .milliseconds(1)))",
                ])
                do { try await Task.sleep(for: delay) } catch { throw .cancelled }
                attempt += 1
            }
        }
    }

    /// The error to throw at once for `error`, or nil when another attempt may help.
    private func finalError(_ error: any Error, operation: String) -> ObjectStorageError? {
        switch error {
        case let error as ObjectStorageError: return error
        case let error as S3ErrorResponse: return error.isRetryable ? nil : .rejected(operation: operation, error)
        // A read of the body's file interrupted by cancellation is the cancellation, not a file problem.
        case let error as FileReadFailure where error.cause is CancellationError || Task.isCancelled: return .cancelled
        case let error as FileReadFailure: return .file(path: error.path, cause: error.cause)
        case is CancellationError: return .cancelled
        case let error as HTTPClientError where error == .cancelled: return .cancelled
        default: return Task.isCancelled ? .cancelled : nil
        }
    }

    private func attemptOnce<T: Sendable>(_ request: S3Request,
                                          handle: (HTTPClientResponse) async throws -> T) async throws -> T {
        switch request.body {
        case .empty:
            return try await send(request, body: nil, payloadHash: SigV4Signer.emptyPayloadHash, handle: handle)
        case .bytes(let data):
            return try await send(request, body: .bytes(ByteBuffer(bytes: data)),
                                  payloadHash: SigV4Signer.hexSHA256(data), handle: handle)
        case .file(let path, let range, let sha256):
            do {
                return try await FileSystem.shared.withFileHandle(forReadingAt: FilePath(path)) { file in
                    let chunks = FileBody(chunks: file.readChunks(in: range, chunkLength: .kibibytes(256)), path: path)
                    return try await self.send(request, body: .stream(chunks, length: .known(range.upperBound - range.lowerBound)),
                                               payloadHash: sha256 ?? SigV4Signer.unsignedPayload, handle: handle)
                }
            } catch let error as FileSystemError {
                throw FileReadFailure(path: path, cause: error)
            }
        }
    }

    private func send<T: Sendable>(_ request: S3Request, body: HTTPClientRequest.Body?, payloadHash: String,
                                   handle: (HTTPClientResponse) async throws -> T) async throws -> T {
        let endpoint = location.endpoint
        var path = "/" + location.bucket
        if let key = request.key { path += "/" + key }
        var headers = request.headers
        headers.append((name: "Host", value: endpoint.hostHeader))
        headers.append((name: "x-amz-content-sha256", value: payloadHash))
        let signature = signer.sign(
            SigV4Signer.Request(method: request.method.rawValue, path: path, query: request.query, headers: headers,
                                payloadHash: payloadHash),
            date: Date())
        var url = "\(endpoint)\(signature.canonicalURI)"
        if !signature.canonicalQuery.isEmpty { url += "?" + signature.canonicalQuery }
        var http = HTTPClientRequest(url: url)
        http.method = request.method
        for header in signature.headers { http.headers.add(name: header.name, value: header.value) }
        if let body { http.body = body }

        let response = try await self.http.execute(http, timeout: TimeAmount(configuration.requestTimeout), logger: nil)
        let status = Int(response.status.code)
        if status >= 500 || status == 429 {
            throw try await errorResponse(response)
        }
        return try await handle(response)
    }

    /// The S3 error in an answer, its body read up to a bound (error documents are small).
    func errorResponse(_ response: HTTPClientResponse) async throws -> S3ErrorResponse {
        let body = try await response.body.collect(upTo: 64 << 10)
        return S3ErrorResponse(status: Int(response.status.code), body: Data(body.readableBytesView),
                               requestID: response.headers.first(name: "x-amz-request-id"))
    }

    /// The whole (small) body of a successful answer, or its S3 error thrown.
    func successBody(_ response: HTTPClientResponse) async throws -> Data {
        guard (200..<300).contains(Int(response.status.code)) else { throw try await errorResponse(response) }
        return Data(try await response.body.collect(upTo: 16 << 20).readableBytesView)
    }
}
