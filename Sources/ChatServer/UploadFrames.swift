import ChatProtocol
import MediaStore
import NIOCore

/// `uploadBegin`, `uploadResume`, binary chunks, `uploadEnd` and `uploadCancel` of one connection, and the upload
/// its binary frames go to.
struct UploadFrames {
    /// The upload binary frames go to: the one begun or resumed last on this connection.
    private struct ActiveUpload {
        var handle: UploadHandle
        var declaredSize: Int?
        var acknowledged: Int
    }
    private var upload: ActiveUpload?
    /// After a failed upload, binary frames the client had already sent are dropped quietly (one error was enough)
    /// until its next text frame.
    private var droppingBinary = false

    /// A text frame arrived: binary frames after it are the client's new intent again.
    mutating func textFrameArrived() {
        droppingBinary = false
    }

    mutating func begin(_ begin: UploadBegin, in context: inout FrameContext) async {
        await setAside(context)
        do {
            let position = try await context.services.media.begin(user: context.connection.user, name: begin.name,
                                                                  declaredSize: begin.size, declaredSHA256: begin.sha256)
            upload = ActiveUpload(handle: position.handle, declaredSize: begin.size, acknowledged: 0)
            context.send(.uploadReady(ready(position, requestId: begin.requestId, context)))
        } catch {
            context.reject(error.code, error.description, ref: begin.requestId)
        }
    }

    mutating func resume(_ resume: UploadResume, in context: inout FrameContext) async {
        if upload?.handle.id != resume.uploadId { await setAside(context) }
        do {
            let position = try await context.services.media.resume(user: context.connection.user, uploadId: resume.uploadId)
            upload = ActiveUpload(handle: position.handle, declaredSize: position.declaredSize, acknowledged: position.offset)
            context.send(.uploadReady(ready(position, requestId: resume.requestId, context)))
        } catch {
            upload = nil
            context.reject(error.code, error.description, ref: resume.uploadId)
        }
    }

    mutating func end(_ uploadId: String, in context: inout FrameContext) async {
        guard let current = upload, current.handle.id == uploadId else {
            context.reject(.unknownUpload,
                           "upload \(uploadId.prefix(80)) is not in progress on this connection: send uploadResume first",
                           ref: uploadId)
            return
        }
        upload = nil
        do {
            let outcome = try await context.services.media.finish(current.handle)
            context.send(.uploadDone(UploadDone(uploadId: outcome.uploadId, attachment: outcome.attachment,
                                                duplicate: outcome.duplicate)))
        } catch {
            context.reject(error.code, error.description, ref: uploadId)
        }
    }

    mutating func cancel(_ uploadId: String, in context: inout FrameContext) async {
        if upload?.handle.id == uploadId { upload = nil }
        do {
            try await context.services.media.cancel(user: context.connection.user, uploadId: uploadId)
        } catch {
            context.reject(error.code, error.description, ref: uploadId)
        }
    }

    mutating func receive(_ bytes: ByteBuffer, in context: inout FrameContext) async {
        guard var current = upload else {
            if !droppingBinary {
                context.reject(.unexpectedBinary,
                               "binary frames carry upload bytes, and no upload is in progress on this connection: "
                               + "send uploadBegin (or uploadResume) first")
                droppingBinary = true
            }
            return
        }
        do {
            let offset = try await context.services.media.append(current.handle, bytes)
            if offset - current.acknowledged >= context.configuration.media.progressInterval || offset == current.declaredSize {
                current.acknowledged = offset
                context.send(.uploadProgress(UploadProgress(uploadId: current.handle.id, offset: offset)))
            }
            upload = current
        } catch {
            upload = nil
            droppingBinary = true
            context.reject(error.code, error.description, ref: current.handle.id)
        }
    }

    /// The connection ended: its upload waits for a resume.
    mutating func connectionEnded(_ context: FrameContext) async {
        await setAside(context)
    }

    private func ready(_ position: UploadPosition, requestId: String?, _ context: FrameContext) -> UploadReady {
        let configuration = context.configuration
        return UploadReady(requestId: requestId, uploadId: position.handle.id, offset: position.offset,
                           chunkSize: min(configuration.media.chunkSize, configuration.maxFrameBytes),
                           resumeWindowMs: Int(configuration.media.resumeWindow.components.seconds * 1000))
    }

    /// A new upload replaces the current one on this connection; the old one can still be resumed.
    private mutating func setAside(_ context: FrameContext) async {
        if let current = upload { await context.services.media.detach(current.handle) }
        upload = nil
    }
}
