import ChatProtocol
import ChatStore
import Foundation

/// `setStatus`, `assign` and `note`: agents' workflow. Each becomes a row of the conversation's timeline stored
/// through the message writer, so it is acknowledged after its commit, delivered to every agent on every node,
/// replayed on resync and shown in history like a message, while the customer never sees it.
enum WorkflowFrames {
    static func setStatus(_ request: SetStatus, receivedAt: ContinuousClock.Instant, in context: inout FrameContext) async {
        guard let customer = await agentConversation(request.conversation, ref: request.requestId, in: &context) else { return }
        if let until = request.until {
            guard request.status == .snoozed else {
                context.reject(.invalidFrame, "field \"until\" goes only with the status \"snoozed\"", ref: request.requestId)
                return
            }
            guard until > epochMilliseconds() else {
                context.reject(.invalidFrame, "field \"until\" must be a time in the future (epoch milliseconds)", ref: request.requestId)
                return
            }
        }
        let agent = context.connection.user
        await submit(.status(request.status, until: request.until), text: describe(status: request.status, until: request.until, by: agent),
                     conversation: customer, requestId: request.requestId, receivedAt: receivedAt, in: &context)
    }

    static func assign(_ request: Assign, receivedAt: ContinuousClock.Instant, in context: inout FrameContext) async {
        guard let customer = await agentConversation(request.conversation, ref: request.requestId, in: &context) else { return }
        let agent = context.connection.user
        if let assignee = request.agent, assignee != agent {
            guard Names.isValidUsername(assignee) else {
                context.reject(.invalidFrame, "field \"agent\" is not a valid username", ref: request.requestId)
                return
            }
            do {
                guard try await context.services.tokens.role(of: assignee) == .agent else {
                    context.reject(.invalidFrame, "no agent named \(assignee)", ref: request.requestId)
                    return
                }
            } catch {
                context.send(.error(ErrorFrame(code: .storeFailed, message: "the agent could not be looked up; try again", ref: request.requestId)))
                return
            }
        }
        await submit(.assignment(request.agent), text: describe(assignee: request.agent, by: agent), conversation: customer,
                     requestId: request.requestId, receivedAt: receivedAt, in: &context)
    }

    static func note(_ note: Note, receivedAt: ContinuousClock.Instant, in context: inout FrameContext) async {
        guard context.connection.role == .agent else {
            context.reject(.forbidden, "only agents can write notes", ref: note.clientId)
            return
        }
        await ChatFrames.send(Send(clientId: note.clientId, text: note.text, conversation: note.conversation, attachments: note.attachments),
                              kind: .note, receivedAt: receivedAt, in: &context)
    }

    /// The customer an agent's workflow request names, once it is known to exist; nil after an error frame.
    private static func agentConversation(_ conversation: String, ref: String?, in context: inout FrameContext) async -> String? {
        guard context.connection.role == .agent else {
            context.reject(.forbidden, "only agents can change a conversation's status or assignee", ref: ref)
            return nil
        }
        if let ref, !Names.isValidClientId(ref) {
            context.reject(.invalidFrame, "field \"requestId\" must be 1 to 128 printable ASCII characters")
            return nil
        }
        guard let customer = context.resolve(conversation, ref: ref) else { return nil }
        guard await context.services.hub.isCustomer(customer) else {
            context.reject(.unknownConversation, "no customer named \(customer)", ref: ref)
            return nil
        }
        return customer
    }

    private static func submit(_ event: ConversationEvent, text: String, conversation: String, requestId: String?,
                               receivedAt: ContinuousClock.Instant, in context: inout FrameContext) async {
        // The request id makes a resent request safe, as a client id does for messages. Client ids are printable
        // ASCII, so the "§" keeps a workflow row from ever meeting a message's id.
        let clientId = "§\(event.kind.rawValue):\(requestId ?? UUID().uuidString)"
        let message = OutgoingMessage(sender: context.connection.user, senderRole: .agent, clientId: clientId, text: text,
                                      target: .conversation(conversation), kind: .event(event))
        await ChatFrames.submit(message, requestId: requestId, receivedAt: receivedAt, in: &context)
    }

    /// The line a timeline shows for a status change (clients that know `event` may show their own).
    static func describe(status: ConversationStatus, until: Int64?, by agent: String) -> String {
        switch status {
        case .open: "\(agent) reopened the conversation"
        case .resolved: "\(agent) resolved the conversation"
        case .snoozed:
            if let until {
                "\(agent) snoozed the conversation until \(Date(timeIntervalSince1970: Double(until) / 1000).formatted(.iso8601))"
            } else {
                "\(agent) snoozed the conversation until the customer writes"
            }
        }
    }

    static func describe(assignee: String?, by agent: String) -> String {
        switch assignee {
        case nil: "\(agent) unassigned the conversation"
        case agent: "\(agent) took the conversation"
        case let other?: "\(agent) assigned the conversation to \(other)"
        }
    }
}
