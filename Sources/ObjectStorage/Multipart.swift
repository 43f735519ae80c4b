import AsyncHTTPClient
import Foundation
import NIOCore

/// A multipart upload the store holds parts of (ListMultipartUploads): one in progress, or left by a writer that
/// died mid-upload or could not abort it (the store was down).
public struct PendingUpload: Sendable, Equatable {
    public var key: String
    public var uploadID: String
    /// When it was started, as the store says (ISO 8601), if it says.
    public var initiated: String?
}

extension S3Client {
    /// CreateMultipartUpload, then UploadPart for each part read from the file one at a time (each streamed in
    /// chunks, so memory stays bounded by the chunk, not the part), then CompleteMultipartUpload. Parts go one
    /// after another: the media store's uploads arrive one file at a time, and sequential parts keep one connection
    /// and one part's worth of retries. Any failure, cancellation included, aborts the upload so that its parts do
    /// not stay in the store (and on the bill).
    func putMultipart(_ key: String, fromFile path: String, size: Int64, contentType: String?)
        async throws(ObjectStorageError) -> ObjectInfo
    {
        let uploadID = try await createMultipartUpload(key, contentType: contentType)
        do {
            // At most 10,000 parts: a file too large for the configured part size gets larger parts.
            let partSize = max(Int64(configuration.partSize), (size + 9_999) / 10_000)
            var parts: [(number: Int, etag: String)] = []
            var offset: Int64 = 0
            while offset < size {
                let end = min(offset + partSize, size)
                let number = parts.count + 1
                let etag = try await uploadPart(key, uploadID: uploadID, number: number, path: path, range: offset..<end)
                parts.append((number, etag))
                offset = end
            }
            let etag = try await completeOrConfirm(key, uploadID: uploadID, parts: parts, size: Int(size))
            return ObjectInfo(key: key, size: Int(size), etag: etag, contentType: contentType)
        } catch {
            // A task of its own, so a cancelled upload is still aborted.
            let aborted = await Task {
                do {
                    try await self.abortMultipartUpload(key, uploadID: uploadID)
                    return true
                } catch {
                    self.logger.error("could not abort a failed multipart upload; its parts remain in the store until chat-admin media gc",
                                      metadata: ["key": "\(key)", "upload_id": "\(uploadID)", "cause": "\(error)"])
                    return false
                }
            }.value
            if case .cancelled = error { throw .cancelled }
            throw .multipartUpload(key: key, uploadID: uploadID, aborted: aborted, cause: error)
        }
    }

    /// Package-visible so that tests can leave an upload unfinished, as a crashed writer does.
    package func createMultipartUpload(_ key: String, contentType: String?) async throws(ObjectStorageError) -> String {
        let operation = "CreateMultipartUpload \(key)"
        var request = S3Request(method: .POST, key: key, query: [("uploads", "")])
        if let contentType { request.headers.append((name: "Content-Type", value: contentType)) }
        return try await execute(operation, request) { response in
            let body = try await self.successBody(response)
            guard let root = XMLNode.parse(body), root.name == "InitiateMultipartUploadResult",
                let uploadID = root["UploadId"], !uploadID.isEmpty
            else { throw ObjectStorageError.invalidResponse(operation: operation, detail: "no UploadId") }
            return uploadID
        }
    }

    package func uploadPart(_ key: String, uploadID: String, number: Int, path: String, range: Range<Int64>)
        async throws(ObjectStorageError) -> String
    {
        let operation = "UploadPart \(number) of \(key)"
        // Unsigned: a part's hash is not the blob's, and computing it would read every part twice.
        let request = S3Request(method: .PUT, key: key, query: [("partNumber", "\(number)"), ("uploadId", uploadID)],
                                body: .file(path: path, range: range))
        return try await execute(operation, request) { response in
            _ = try await self.successBody(response)
            guard let etag = response.headers.first(name: "etag"), !etag.isEmpty else {
                throw ObjectStorageError.invalidResponse(operation: operation, detail: "no ETag for the part")
            }
            return etag
        }
    }

    /// CompleteMultipartUpload, or the proof that an earlier attempt of it worked. A store that takes long to
    /// assemble a large object may answer after the read timeout; the retry then finds the upload gone because it
    /// became the object, and the object of the right size is the proof (AWS's advice for this case).
    private func completeOrConfirm(_ key: String, uploadID: String, parts: [(number: Int, etag: String)], size: Int)
        async throws(ObjectStorageError) -> String?
    {
        do {
            return try await completeMultipartUpload(key, uploadID: uploadID, parts: parts)
        } catch {
            guard case .rejected(_, let response) = error, response.code == "NoSuchUpload",
                  let stored = try await head(key), stored.size == size else { throw error }
            return stored.etag
        }
    }

    private func completeMultipartUpload(_ key: String, uploadID: String, parts: [(number: Int, etag: String)])
        async throws(ObjectStorageError) -> String?
    {
        let operation = "CompleteMultipartUpload \(key)"
        var xml = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        for part in parts {
            xml += "<Part><PartNumber>\(part.number)</PartNumber><ETag>\(XMLNode.escape(part.etag))</ETag></Part>"
        }
        xml += "</CompleteMultipartUpload>"
        let request = S3Request(method: .POST, key: key, query: [("uploadId", uploadID)],
                                headers: [(name: "Content-Type", value: "application/xml")], body: .bytes(Data(xml.utf8)))
        return try await execute(operation, request) { response in
            let body = try await self.successBody(response)
            // S3 may answer 200 and still fail: the error then comes in the body, sent while it worked.
            guard let root = XMLNode.parse(body) else {
                throw ObjectStorageError.invalidResponse(operation: operation, detail: "unreadable answer")
            }
            if root.name == "Error" {
                throw S3ErrorResponse(status: Int(response.status.code), body: body,
                                      requestID: response.headers.first(name: "x-amz-request-id"))
            }
            return Self.unquoted(root["ETag"])
        }
    }

    /// Removes an unfinished multipart upload's parts. Aborting one that is already gone succeeds.
    public func abortMultipartUpload(_ key: String, uploadID: String) async throws(ObjectStorageError) {
        let request = S3Request(method: .DELETE, key: key, query: [("uploadId", uploadID)])
        try await execute("AbortMultipartUpload \(key)", request) { response in
            if response.status.code == 404 { return }
            _ = try await self.successBody(response)
        }
    }

    /// Every unfinished multipart upload under `prefix`, a page of up to 1,000 at a time, for finding and aborting
    /// what a crashed writer left.
    public func pendingMultipartUploads(prefix: String = "") async throws(ObjectStorageError) -> [PendingUpload] {
        let operation = "ListMultipartUploads \(prefix)"
        var uploads: [PendingUpload] = []
        var marker: UploadsPage.Marker?
        while true {
            var query: [(name: String, value: String)] = [("uploads", "")]
            if !prefix.isEmpty { query.append(("prefix", prefix)) }
            if let marker { query += [("key-marker", marker.key), ("upload-id-marker", marker.uploadID)] }
            let page = try await execute(operation, S3Request(method: .GET, key: nil, query: query)) { response -> UploadsPage in
                let body = try await self.successBody(response)
                guard let root = XMLNode.parse(body), root.name == "ListMultipartUploadsResult" else {
                    throw ObjectStorageError.invalidResponse(operation: operation, detail: "not a ListMultipartUploadsResult")
                }
                let uploads = root.children("Upload").compactMap { upload -> PendingUpload? in
                    guard let key = upload["Key"], let id = upload["UploadId"] else { return nil }
                    return PendingUpload(key: key, uploadID: id, initiated: upload["Initiated"])
                }
                guard root["IsTruncated"] == "true" else { return UploadsPage(uploads: uploads, next: nil) }
                guard let key = root["NextKeyMarker"], !key.isEmpty else {
                    throw ObjectStorageError.invalidResponse(operation: operation, detail: "truncated without a NextKeyMarker")
                }
                return UploadsPage(uploads: uploads, next: .init(key: key, uploadID: root["NextUploadIdMarker"] ?? ""))
            }
            uploads += page.uploads
            guard let next = page.next else { return uploads }
            marker = next
        }
    }
}

/// One page of ListMultipartUploads, and where the next starts.
private struct UploadsPage: Sendable {
    struct Marker: Sendable {
        var key: String
        var uploadID: String
    }

    var uploads: [PendingUpload]
    var next: Marker?
}
