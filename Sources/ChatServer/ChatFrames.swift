import ChatProtocol
import ChatStore

/// `send`, `broadcast` and `typing`: messages go to the writer's queue (their acks come when the batch is
/// stored), typing notices onto the delivery bus.
enum ChatFrames {
    static func send(_ send: Send, kind: MessageKind = .message, receivedAt: ContinuousClock.Instant,
                     in context: inout FrameContext) async {
        let hasAttachments = !(send.attachments ?? []).isEmpty
        guard validate(clientId: send.clientId, in: &context),
              validate(text: send.text, ref: send.clientId, allowEmpty: hasAttachments, in: &context),
              let customer = context.resolve(send.conversation, ref: send.clientId),
              let attachments = await resolveAttachments(send.attachments ?? [], ref: send.clientId, in: &context)
        else { return }
        let connection = context.connection
        await submit(OutgoingMessage(sender: connection.user, senderRole: connection.role, clientId: send.clientId,
                                     text: send.text, target: .conversation(customer), attachments: attachments, kind: kind),
                     receivedAt: receivedAt, in: &context)
    }

    static func broadcast(_ broadcast: Broadcast, receivedAt: ContinuousClock.Instant, in context: inout FrameContext) async {
        guard context.connection.role == .agent else {
            context.reject(.forbidden, "only agents can broadcast", ref: broadcast.clientId)
            return
        }
        guard validate(clientId: broadcast.clientId, in: &context),
              validate(text: broadcast.text, ref: broadcast.clientId, in: &context) else { return }
        await submit(OutgoingMessage(sender: context.connection.user, senderRole: .agent, clientId: broadcast.clientId,
                                     text: broadcast.text, target: .allCustomers),
                     receivedAt: receivedAt, in: &context)
    }

    static func typing(_ typing: Typing, in context: inout FrameContext) async {
        guard let customer = context.resolve(typing.conversation, ref: nil) else { return }
        guard await context.services.hub.isCustomer(customer) else {
            context.reject(.unknownConversation, "no customer named \(customer)")
            return
        }
        let connection = context.connection
        let notice = TypingNotice(conversation: customer, user: connection.user, role: connection.role, active: typing.active)
        guard let buffer = try? encodeFrame(.typing(notice)) else { return }
        await context.services.bus.publish(.typing(conversation: customer, frame: EncodedFrame(buffer: buffer), origin: connection.id))
    }

    /// Only an enqueue: the ack comes through the outbox when the batch is stored, so a connection can have many
    /// messages in flight while its frames keep their order.
    static func submit(_ message: OutgoingMessage, requestId: String? = nil, receivedAt: ContinuousClock.Instant,
                       in context: inout FrameContext) async {
        do {
            try await context.services.writer.submit(MessageWriter.Pending(message: message, origin: context.connection,
                                                                           receivedAt: receivedAt, requestId: requestId))
        } catch .overloaded {
            context.send(.error(ErrorFrame(code: .storeFailed, message: "the server is overloaded; resend later with the same clientId",
                                           ref: requestId ?? message.clientId, retryAfterMs: 1000)))
        } catch {
            context.send(.error(ErrorFrame(code: .shuttingDown, message: "the server is shutting down; resend after reconnecting",
                                           ref: requestId ?? message.clientId)))
        }
    }

    /// Finished uploads of the sender for a `send`; nil (after an error frame) when one is not.
    private static func resolveAttachments(_ references: [AttachmentReference], ref: String,
                                           in context: inout FrameContext) async -> [Attachment]? {
        guard references.count <= 10 else {
            context.reject(.invalidFrame, "at most 10 attachments per message", ref: ref)
            return nil
        }
        var attachments: [Attachment] = []
        for reference in references {
            guard (reference.uploadId == nil) != (reference.sha256 == nil) else {
                context.reject(.invalidFrame, "each attachment names either \"uploadId\" or \"sha256\"", ref: ref)
                return nil
            }
            if let hash = reference.sha256, !Hashes.isValidSHA256(hash) {
                context.reject(.invalidFrame, "attachment \"sha256\" must be 64 hexadecimal digits", ref: ref)
                return nil
            }
            do {
                guard let attachment = try await context.services.catalog.finishedUpload(of: context.connection.user,
                                                                                         reference: reference) else {
                    context.reject(.unknownAttachment,
                                   "attachment \((reference.uploadId ?? reference.sha256 ?? "").prefix(80)) is not a finished upload of yours",
                                   ref: ref)
                    return nil
                }
                guard attachment.expired != true else {
                    context.reject(.attachmentExpired, "attachment \(attachment.name) has expired on the server; upload the file again", ref: ref)
                    return nil
                }
                attachments.append(attachment)
            } catch {
                context.send(.error(ErrorFrame(code: .storeFailed, message: "attachments could not be looked up; resend later", ref: ref)))
                return nil
            }
        }
        return attachments
    }

    private static func validate(clientId: String, in context: inout FrameContext) -> Bool {
        guard Names.isValidClientId(clientId) else {
            context.reject(.invalidFrame, "field \"clientId\" must be 1 to 128 printable ASCII characters")
            return false
        }
        return true
    }

    private static func validate(text: String, ref: String, allowEmpty: Bool = false, in context: inout FrameContext) -> Bool {
        let size = text.utf8.count
        let limit = context.configuration.maxTextBytes
        if size > limit {
            context.reject(.tooLarge, "text of \(size) bytes is over the limit of \(limit) bytes", ref: ref)
            return false
        }
        if !allowEmpty && text.allSatisfy(\.isWhitespace) {
            context.reject(.invalidFrame, "field \"text\" is empty", ref: ref)
            return false
        }
        return true
    }
}
