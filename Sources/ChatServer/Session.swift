import ChatProtocol
import ChatStore
import Foundation
import HummingbirdWebSocket
import MediaStore
import NIOCore

/// Token bucket: `rate` frames per second on average, `burst` at once.
struct TokenBucket {
    let rate: Double
    let burst: Double
    private var tokens: Double
    private var last: ContinuousClock.Instant

    init(rate: Double, burst: Int) {
        self.rate = rate
        self.burst = Double(burst)
        tokens = Double(burst)
        last = .now
    }

    /// Takes one token; when none is left returns the wait in milliseconds until one is.
    mutating func take(now: ContinuousClock.Instant = .now) -> Int? {
        let elapsed = now - last
        last = now
        let seconds = elapsed.inSeconds
        tokens = min(burst, tokens + seconds * rate)
        if tokens >= 1 {
            tokens -= 1
            return nil
        }
        return Int(((1 - tokens) / rate * 1000).rounded(.up))
    }
}

/// The frame loop state of one authenticated connection. Owned by the connection's reading task; nothing else
/// touches it.
struct Session {
    let connection: Connection
    let services: ChatServices
    private var bucket: TokenBucket
    private var rejections: [ContinuousClock.Instant] = []
    private let codec = FrameCodec()

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

    init(connection: Connection, services: ChatServices) {
        self.connection = connection
        self.services = services
        bucket = TokenBucket(rate: services.configuration.messagesPerSecond, burst: services.configuration.burst)
    }

    private var configuration: ServerConfiguration { services.configuration }

    mutating func receive(_ message: WebSocketMessage) async {
        let receivedAt = ContinuousClock.now
        switch message {
        case .binary(let bytes):
            await receiveChunk(bytes)
        case .text(let text):
            droppingBinary = false
            let size = text.utf8.count
            // Far over the text limit: refuse without parsing.
            if size > configuration.maxTextBytes + 16 * 1024 {
                reject(.tooLarge, "frame of \(size) bytes is over the limit; text may be at most \(configuration.maxTextBytes) bytes")
                return
            }
            let data = Data(text.utf8)
            if let wait = bucket.take(now: receivedAt) {
                // The reference tells the client which message to resend after the wait.
                reject(.rateLimited, "too many frames: at most \(configuration.messagesPerSecond) per second",
                       ref: codec.reference(in: data), retryAfterMs: wait)
                return
            }
            let frame: ClientFrame
            do {
                frame = try codec.decodeClientFrame(data)
            } catch {
                reject(error.code, error.message, ref: codec.reference(in: data))
                return
            }
            await handle(frame, receivedAt: receivedAt)
        }
    }

    private mutating func handle(_ frame: ClientFrame, receivedAt: ContinuousClock.Instant) async {
        switch frame {
        case .hello:
            reject(.alreadyAuthenticated, "hello was already accepted on this connection")
        case .send(let send):
            let hasAttachments = !(send.attachments ?? []).isEmpty
            guard validate(clientId: send.clientId), validate(text: send.text, ref: send.clientId, allowEmpty: hasAttachments) else { return }
            guard let customer = resolve(send.conversation, ref: send.clientId) else { return }
            guard let attachments = await resolveAttachments(send.attachments ?? [], ref: send.clientId) else { return }
            await submit(OutgoingMessage(sender: connection.user, senderRole: connection.role, clientId: send.clientId,
                                   text: send.text, target: .conversation(customer), attachments: attachments), receivedAt: receivedAt)
        case .broadcast(let broadcast):
            guard connection.role == .agent else {
                reject(.forbidden, "only agents can broadcast", ref: broadcast.clientId)
                return
            }
            guard validate(clientId: broadcast.clientId), validate(text: broadcast.text, ref: broadcast.clientId) else { return }
            await submit(OutgoingMessage(sender: connection.user, senderRole: .agent, clientId: broadcast.clientId,
                                   text: broadcast.text, target: .allCustomers), receivedAt: receivedAt)
        case .history(let request):
            await history(request)
        case .read(let marker):
            await read(marker)
        case .typing(let typing):
            guard let customer = resolve(typing.conversation, ref: nil) else { return }
            guard await services.hub.isCustomer(customer) else {
                reject(.unknownConversation, "no customer named \(customer)")
                return
            }
            let notice = TypingNotice(conversation: customer, user: connection.user, role: connection.role, active: typing.active)
            guard let buffer = try? encodeFrame(.typing(notice)) else { return }
            await services.bus.publish(.typing(conversation: customer, frame: EncodedFrame(buffer: buffer), origin: connection.id))
        case .ping(let requestId):
            send(.pong(requestId: requestId))
        case .uploadBegin(let begin):
            await beginUpload(begin)
        case .uploadResume(let resume):
            await resumeUpload(resume)
        case .uploadEnd(let end):
            await endUpload(end.uploadId)
        case .uploadCancel(let cancel):
            if upload?.handle.id == cancel.uploadId { upload = nil }
            do {
                try await services.media.cancel(user: connection.user, uploadId: cancel.uploadId)
            } catch {
                reject(error.code, error.description, ref: cancel.uploadId)
            }
        }
    }

    // MARK: Uploads

    private mutating func beginUpload(_ begin: UploadBegin) async {
        await setAside()
        do {
            let position = try await services.media.begin(user: connection.user, name: begin.name, declaredSize: begin.size,
                                                          declaredSHA256: begin.sha256)
            upload = ActiveUpload(handle: position.handle, declaredSize: begin.size, acknowledged: 0)
            send(.uploadReady(ready(position, requestId: begin.requestId)))
        } catch {
            reject(error.code, error.description, ref: begin.requestId)
        }
    }

    private mutating func resumeUpload(_ resume: UploadResume) async {
        if upload?.handle.id != resume.uploadId { await setAside() }
        do {
            let position = try await services.media.resume(user: connection.user, uploadId: resume.uploadId)
            upload = ActiveUpload(handle: position.handle, declaredSize: position.declaredSize, acknowledged: position.offset)
            send(.uploadReady(ready(position, requestId: resume.requestId)))
        } catch {
            upload = nil
            reject(error.code, error.description, ref: resume.uploadId)
        }
    }

    private mutating func endUpload(_ uploadId: String) async {
        guard let current = upload, current.handle.id == uploadId else {
            reject(.unknownUpload, "upload \(uploadId.prefix(80)) is not in progress on this connection: send uploadResume first",
                   ref: uploadId)
            return
        }
        upload = nil
        do {
            let outcome = try await services.media.finish(current.handle)
            send(.uploadDone(UploadDone(uploadId: outcome.uploadId, attachment: outcome.attachment, duplicate: outcome.duplicate)))
        } catch {
            reject(error.code, error.description, ref: uploadId)
        }
    }

    private mutating func receiveChunk(_ bytes: ByteBuffer) async {
        guard var current = upload else {
            if !droppingBinary {
                reject(.unexpectedBinary, "binary frames carry upload bytes, and no upload is in progress on this connection: "
                       + "send uploadBegin (or uploadResume) first")
                droppingBinary = true
            }
            return
        }
        do {
            let offset = try await services.media.append(current.handle, bytes)
            let interval = configuration.media.progressInterval
            if offset - current.acknowledged >= interval || offset == current.declaredSize {
                current.acknowledged = offset
                send(.uploadProgress(UploadProgress(uploadId: current.handle.id, offset: offset)))
            }
            upload = current
        } catch {
            upload = nil
            droppingBinary = true
            reject(error.code, error.description, ref: current.handle.id)
        }
    }

    private func ready(_ position: UploadPosition, requestId: String?) -> UploadReady {
        UploadReady(requestId: requestId, uploadId: position.handle.id, offset: position.offset,
                    chunkSize: min(configuration.media.chunkSize, configuration.maxFrameBytes),
                    resumeWindowMs: Int(configuration.media.resumeWindow.components.seconds * 1000))
    }

    /// A new upload replaces the current one on this connection; the old one can still be resumed.
    private mutating func setAside() async {
        if let current = upload { await services.media.detach(current.handle) }
        upload = nil
    }

    /// The connection ended: its upload waits for a resume.
    mutating func connectionEnded() async {
        await setAside()
    }

    /// Finished uploads of the sender for a `send`; nil (after an error frame) when one is not.
    private mutating func resolveAttachments(_ references: [AttachmentReference], ref: String) async -> [Attachment]? {
        guard references.count <= 10 else {
            reject(.invalidFrame, "at most 10 attachments per message", ref: ref)
            return nil
        }
        var attachments: [Attachment] = []
        for reference in references {
            guard (reference.uploadId == nil) != (reference.sha256 == nil) else {
                reject(.invalidFrame, "each attachment names either \"uploadId\" or \"sha256\"", ref: ref)
                return nil
            }
            if let hash = reference.sha256, !Hashes.isValidSHA256(hash) {
                reject(.invalidFrame, "attachment \"sha256\" must be 64 hexadecimal digits", ref: ref)
                return nil
            }
            do {
                guard let attachment = try await services.catalog.finishedUpload(of: connection.user, reference: reference) else {
                    reject(.unknownAttachment, "attachment \((reference.uploadId ?? reference.sha256 ?? "").prefix(80)) is not a finished upload of yours",
                           ref: ref)
                    return nil
                }
                guard attachment.expired != true else {
                    reject(.attachmentExpired, "attachment \(attachment.name) has expired on the server; upload the file again", ref: ref)
                    return nil
                }
                attachments.append(attachment)
            } catch {
                send(.error(ErrorFrame(code: .storeFailed, message: "attachments could not be looked up; resend later", ref: ref)))
                return nil
            }
        }
        return attachments
    }

    private mutating func submit(_ message: OutgoingMessage, receivedAt: ContinuousClock.Instant) async {
        // Only an enqueue: the ack comes through the outbox when the batch is stored, so a connection can have
        // many messages in flight while its frames keep their order.
        do {
            try await services.writer.submit(MessageWriter.Pending(message: message, origin: connection, receivedAt: receivedAt))
        } catch .overloaded {
            send(.error(ErrorFrame(code: .storeFailed, message: "the server is overloaded; resend later with the same clientId",
                                   ref: message.clientId, retryAfterMs: 1000)))
        } catch {
            send(.error(ErrorFrame(code: .shuttingDown, message: "the server is shutting down; resend after reconnecting",
                                   ref: message.clientId)))
        }
    }

    private mutating func history(_ request: HistoryRequest) async {
        guard let customer = resolve(request.conversation, ref: request.requestId) else { return }
        if let before = request.before, before < 0 {
            reject(.invalidFrame, "field \"before\" must not be negative", ref: request.requestId)
            return
        }
        if let after = request.after, after < 0 {
            reject(.invalidFrame, "field \"after\" must not be negative", ref: request.requestId)
            return
        }
        if request.before != nil && request.after != nil {
            reject(.invalidFrame, "give \"before\" or \"after\", not both", ref: request.requestId)
            return
        }
        let limit = min(max(request.limit ?? configuration.historyPageDefault, 1), configuration.historyPageMax)
        do {
            let page = try await services.messages.history(customer: customer, before: request.before, after: request.after, limit: limit)
            send(.history(HistoryPage(requestId: request.requestId, conversation: customer, messages: page.messages,
                                      hasMore: page.hasMore)))
        } catch {
            send(.error(ErrorFrame(code: .storeFailed, message: "history could not be read; try again", ref: request.requestId)))
        }
    }

    private mutating func read(_ marker: ReadMarker) async {
        guard let customer = resolve(marker.conversation, ref: nil) else { return }
        guard marker.seq >= 0 else {
            reject(.invalidFrame, "field \"seq\" must not be negative")
            return
        }
        do {
            guard let stored = try await services.readMarkers.markRead(user: connection.user, customer: customer, seq: marker.seq) else {
                reject(.unknownConversation, "no conversation with \(customer) yet")
                return
            }
            let receipt = ReadReceipt(conversation: customer, reader: connection.user, readerRole: connection.role, seq: stored.seq)
            guard let buffer = try? encodeFrame(.read(receipt)) else { return }
            await services.bus.publish(.read(stored, role: connection.role, receipt: EncodedFrame(buffer: buffer), origin: connection.id))
        } catch {
            send(.error(ErrorFrame(code: .storeFailed, message: "the read marker could not be stored; try again")))
        }
    }

    // MARK: Checks

    /// The conversation a frame addresses: a customer's own, or the customer an agent names.
    private mutating func resolve(_ requested: String?, ref: String?) -> String? {
        switch connection.role {
        case .customer:
            if let requested, requested != connection.user {
                reject(.forbidden, "customers can only use their own conversation", ref: ref)
                return nil
            }
            return connection.user
        case .agent:
            guard let requested else {
                reject(.invalidFrame, "field \"conversation\" is missing: agents must name the customer", ref: ref)
                return nil
            }
            guard Names.isValidUsername(requested) else {
                reject(.invalidFrame, "field \"conversation\" is not a valid username", ref: ref)
                return nil
            }
            return requested
        }
    }

    private mutating func validate(clientId: String) -> Bool {
        guard Names.isValidClientId(clientId) else {
            reject(.invalidFrame, "field \"clientId\" must be 1 to 128 printable ASCII characters")
            return false
        }
        return true
    }

    private mutating func validate(text: String, ref: String, allowEmpty: Bool = false) -> Bool {
        let size = text.utf8.count
        if size > configuration.maxTextBytes {
            reject(.tooLarge, "text of \(size) bytes is over the limit of \(configuration.maxTextBytes) bytes", ref: ref)
            return false
        }
        if !allowEmpty && text.allSatisfy(\.isWhitespace) {
            reject(.invalidFrame, "field \"text\" is empty", ref: ref)
            return false
        }
        return true
    }

    // MARK: Output

    private func send(_ frame: ServerFrame) {
        if let buffer = try? encodeFrame(frame) { connection.outbox.send(buffer) }
    }

    /// Answers a bad frame with an error and counts it; too many in the flood window close the connection.
    private mutating func reject(_ code: ErrorCode, _ message: String, ref: String? = nil, retryAfterMs: Int? = nil) {
        services.metrics.rejectedFrames.increment()
        send(.error(ErrorFrame(code: code, message: message, ref: ref, retryAfterMs: retryAfterMs)))
        let now = ContinuousClock.now
        rejections.append(now)
        let window = configuration.floodWindow
        rejections.removeAll { now - $0 > window }
        if rejections.count > configuration.floodThreshold {
            connection.outbox.close(code: CloseCode.flood, reason: "too many rejected frames; slow down")
        }
    }
}
