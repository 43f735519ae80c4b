import ChatProtocol
import ChatStore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import MediaStore
import NIOCore
import ServiceLifecycle

/// HTTP side of the media store: `POST /media` (streamed upload), `GET /media/{sha256}` and
/// `GET /media/{sha256}/thumbnail/{size}`. Every request needs the bearer token of a chat user; a blob is served only
/// to users who may see it, and to everyone else it does not exist (404), so hashes cannot be probed.
struct MediaRoutes: Sendable {
    let services: ChatServices
    private var media: MediaStore { services.media }

    init(services: ChatServices) {
        self.services = services
    }

    func register(on router: Router<ChatRequestContext>) {
        let media = router.group("/media").add(middleware: TokenAuthentication(services: services))
        media.post { request, context in try await upload(request, context: context) }
        media.get(":hash") { request, context in try await blob(request, context: context) }
        media.get(":hash/thumbnail/:size") { request, context in try await thumbnail(request, context: context) }
    }

    // MARK: Upload

    private func upload(_ request: Request, context: ChatRequestContext) async throws -> Response {
        let user = try context.authenticatedUser()
        let query = request.uri.queryParameters
        let name = query.get("name") ?? "upload"
        let declaredSize = request.headers[.contentLength].flatMap { Int($0) }
        let position: UploadPosition
        do {
            position = try await media.begin(user: user.username, name: name, declaredSize: declaredSize,
                                             declaredSHA256: query.get("sha256"))
        } catch {
            throw MediaHTTPError(error)
        }
        let handle = position.handle
        // Body buffers are small (one socket read each); gather them so the pool gets a few large writes.
        let batchSize = media.limits.chunkSize
        var pending = ByteBuffer()
        do {
            for try await var part in request.body {
                if pending.readableBytes == 0 && part.readableBytes >= batchSize {
                    _ = try await media.append(handle, part)
                    continue
                }
                if pending.capacity == 0 { pending = ByteBufferAllocator().buffer(capacity: batchSize) }
                pending.writeBuffer(&part)
                if pending.readableBytes >= batchSize {
                    _ = try await media.append(handle, pending)
                    pending = ByteBuffer()
                }
            }
            if pending.readableBytes > 0 { _ = try await media.append(handle, pending) }
        } catch let error as MediaError {
            throw MediaHTTPError(error)
        } catch {
            // The client went away or the body was malformed: nothing of it is kept.
            try? await media.cancel(user: user.username, uploadId: handle.id)
            services.logger.info("an upload's body could not be read", metadata: ["error": "\(error)"])
            throw MediaHTTPError(status: .badRequest, code: .invalidFrame,
                                 message: "the request body could not be read (cut short or malformed); nothing was kept: send the file again")
        }
        let outcome: UploadOutcome
        do {
            // Not kept on a store failure: resuming is the WebSocket's, and an HTTP client posts the file again.
            outcome = try await media.finish(handle, resumable: false)
        } catch .storeUnavailable {
            throw MediaHTTPError.uploadNotKept
        } catch {
            throw MediaHTTPError(error)
        }
        let done = UploadDone(uploadId: outcome.uploadId, attachment: outcome.attachment, duplicate: outcome.duplicate)
        return Response(status: .created, headers: [.contentType: "application/json"],
                        body: .init(byteBuffer: ByteBuffer(bytes: try JSONEncoder().encode(done))))
    }

    // MARK: Download

    private func blob(_ request: Request, context: ChatRequestContext) async throws -> Response {
        let user = try context.authenticatedUser()
        guard let hash = Self.hash(context), let found = try await accessible(hash, user: user) else { throw MediaHTTPError.notFound }
        guard found.blob.state == .present else { throw MediaHTTPError.gone }
        guard let key = try? BlobKey(blob: hash) else { throw MediaHTTPError.notFound }
        // The catalog has it but the storage may not (deleted behind the server's back, or a prune finishing): to
        // the client it has expired, as a removed attachment has; `media verify` reports it.
        return try await serve(key, size: found.blob.size, missing: .gone, type: found.blob.mimeType, etag: hash,
                               name: found.name, request: request, context: context)
    }

    private func thumbnail(_ request: Request, context: ChatRequestContext) async throws -> Response {
        let user = try context.authenticatedUser()
        guard let hash = Self.hash(context), let size = context.parameters.get("size"),
              let found = try await accessible(hash, user: user),
              let thumbnail = found.blob.thumbnails.first(where: { $0.size == size }),
              let key = try? BlobKey(thumbnailOf: hash, size: size, type: thumbnail.type) else { throw MediaHTTPError.notFound }
        let stem = found.name.split(separator: ".").dropLast().joined(separator: ".")
        let name = "\(stem.isEmpty ? "thumbnail" : stem)-\(size).\(thumbnail.type == "image/png" ? "png" : "jpg")"
        // The catalog does not record a thumbnail's size: the storage's says it.
        return try await serve(key, size: nil, missing: .notFound, type: thumbnail.type, etag: "\(hash)-\(size)", name: name,
                               request: request, context: context)
    }

    private func accessible(_ hash: String, user: SessionRecord) async throws -> (blob: BlobRecord, name: String)? {
        do {
            return try await services.catalog.accessibleBlob(hash: hash, user: user.username, role: user.role)
        } catch {
            services.logger.error("media access check failed", metadata: ["error": "\(error)"])
            throw MediaHTTPError(status: .internalServerError, code: .storeFailed, message: "the media catalog could not be read; try again")
        }
    }

    /// Streams an object (or the requested range of it) from the blob storage with the caching and safety headers.
    /// `size` (the catalog's, for a blob; nil to take the storage's) sets the ranges; what is read is cut to what the
    /// storage holds. A 304 asks the storage nothing; otherwise one GET says whether the object is there before the
    /// head goes out (a HEAD first only for a range of an object whose size the catalog does not know).
    private func serve(_ key: BlobKey, size catalogSize: Int?, missing: MediaHTTPError, type: String, etag: String, name: String,
                       request: Request, context: ChatRequestContext) async throws -> Response {
        var headers: HTTPFields = [
            .eTag: "\"\(etag)\"",
            .cacheControl: "private, immutable",
            .contentType: type,
            .acceptRanges: "bytes",
            .contentDisposition: Self.contentDisposition(type: type, name: name),
        ]
        headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        if let match = request.headers[.ifNoneMatch], Self.etagMatches(match, etag: etag) {
            return Response(status: .notModified, headers: headers)
        }
        var range: ClosedRange<Int>? = nil
        let ifRange = request.headers[.ifRange]
        if let header = request.headers[.range], ifRange == nil || ifRange == "\"\(etag)\"" {
            var size = catalogSize
            if size == nil {
                let stored: Int?
                do { stored = try await media.blobs.size(of: key) } catch { throw storageUnavailable(key, error) }
                guard let stored else { throw missingObject(key, missing) }
                size = stored
            }
            let total = size ?? 0
            switch Self.parseRange(header, size: total) {
            case .whole: break
            case .range(let parsed):
                range = parsed
                headers[.contentRange] = "bytes \(parsed.lowerBound)-\(parsed.upperBound)/\(total)"
            case .unsatisfiable:
                headers[.contentRange] = "bytes */\(total)"
                return Response(status: .rangeNotSatisfiable, headers: headers)
            }
        }
        let status: HTTPResponse.Status = range == nil ? .ok : .partialContent
        let object: OpenedObject?
        do {
            object = try await media.blobs.open(key, range: range.map { $0.lowerBound..<($0.upperBound + 1) })
        } catch {
            throw storageUnavailable(key, error)
        }
        guard let opened = object else { throw missingObject(key, missing) }
        guard !opened.range.isEmpty else { return Response(status: status, headers: headers, body: ResponseBody()) }
        let bytes = opened.bytes
        let body = ResponseBody(contentLength: opened.range.count) { writer in
            for try await chunk in bytes {
                try await writer.write(chunk)
            }
            try await writer.finish(nil)
        }
        return Response(status: status, headers: headers, body: body)
    }

    /// The catalog has it but the storage does not: for a blob, deleted behind the server's back or a prune
    /// finishing (`media verify` reports it).
    private func missingObject(_ key: BlobKey, _ answer: MediaHTTPError) -> MediaHTTPError {
        services.logger.warning("media object missing from the storage", metadata: ["key": "\(key)"])
        return answer
    }

    private func storageUnavailable(_ key: BlobKey, _ error: BlobStorageError) -> MediaHTTPError {
        services.logger.error("media storage unavailable", metadata: ["key": "\(key)", "error": "\(error)"])
        return .storageUnavailable
    }

    // MARK: Helpers

    private static func hash(_ context: ChatRequestContext) -> String? {
        guard let hash = context.parameters.get("hash"), Hashes.isValidSHA256(hash) else { return nil }
        return Hashes.normalized(hash)
    }

    enum RangeRequest: Equatable {
        case whole
        case range(ClosedRange<Int>)
        case unsatisfiable
    }

    /// One `bytes=` range (`a-b`, `a-`, `-n`). Several ranges or another unit are answered with the whole file,
    /// as RFC 9110 allows.
    static func parseRange(_ header: String, size: Int) -> RangeRequest {
        let value = header.trimmingCharacters(in: .whitespaces)
        guard value.lowercased().hasPrefix("bytes="), !value.contains(",") else { return .whole }
        let spec = value.dropFirst(6).trimmingCharacters(in: .whitespaces)
        let parts = spec.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return .whole }
        let first = parts[0].trimmingCharacters(in: .whitespaces), last = parts[1].trimmingCharacters(in: .whitespaces)
        if first.isEmpty {
            guard let suffix = Int(last), suffix >= 0 else { return .whole }
            guard suffix > 0, size > 0 else { return .unsatisfiable }
            return .range(max(0, size - suffix)...(size - 1))
        }
        guard let start = Int(first), start >= 0 else { return .whole }
        guard start < size else { return .unsatisfiable }
        if last.isEmpty { return .range(start...(size - 1)) }
        guard let end = Int(last), end >= start else { return .whole }
        return .range(start...min(end, size - 1))
    }

    static func etagMatches(_ header: String, etag: String) -> Bool {
        header.split(separator: ",").contains { candidate in
            let trimmed = candidate.trimmingCharacters(in: .whitespaces)
            return trimmed == "*" || trimmed == "\"\(etag)\"" || trimmed == "W/\"\(etag)\""
        }
    }

    /// Images, audio and video (except SVG, which can carry scripts) may be shown inline; everything else, and in
    /// particular HTML, SVG and scripts, is a download so a browser never renders it in the server's origin.
    static func contentDisposition(type: String, name: String) -> String {
        let passive = (type.hasPrefix("image/") && !type.contains("svg")) || type.hasPrefix("audio/") || type.hasPrefix("video/")
        let fallback = String(String.UnicodeScalarView(name.unicodeScalars.map { scalar in
            scalar.isASCII && scalar.value >= 0x20 && scalar.value < 0x7F && scalar != "\"" && scalar != "\\" ? scalar : "_"
        }))
        var allowed = CharacterSet.alphanumerics.intersection(CharacterSet(charactersIn: Unicode.Scalar(0)...Unicode.Scalar(127)))
        allowed.insert(charactersIn: "!#$&+-.^_`|~")
        let encoded = name.addingPercentEncoding(withAllowedCharacters: allowed) ?? fallback
        return "\(passive ? "inline" : "attachment"); filename=\"\(fallback)\"; filename*=UTF-8''\(encoded)"
    }
}

/// Removes interrupted uploads once their resume window has passed.
struct MediaSweeper: Service {
    let media: MediaStore
    let interval: Duration

    func run() async throws {
        let media = self.media
        let interval = self.interval
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: interval)
                await media.sweep()
            }
        }
    }
}
