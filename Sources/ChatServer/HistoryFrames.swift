import ChatProtocol
import ChatStore

/// `history` pages and `read` markers.
enum HistoryFrames {
    static func history(_ request: HistoryRequest, in context: inout FrameContext) async {
        guard let customer = context.resolve(request.conversation, ref: request.requestId) else { return }
        if let before = request.before, before < 0 {
            context.reject(.invalidFrame, "field \"before\" must not be negative", ref: request.requestId)
            return
        }
        if let after = request.after, after < 0 {
            context.reject(.invalidFrame, "field \"after\" must not be negative", ref: request.requestId)
            return
        }
        if request.before != nil && request.after != nil {
            context.reject(.invalidFrame, "give \"before\" or \"after\", not both", ref: request.requestId)
            return
        }
        let configuration = context.configuration
        let limit = min(max(request.limit ?? configuration.historyPageDefault, 1), configuration.historyPageMax)
        do {
            let page = try await context.services.messages.history(customer: customer, before: request.before,
                                                                   after: request.after, limit: limit,
                                                                   audience: Audience(context.connection.role))
            context.send(.history(HistoryPage(requestId: request.requestId, conversation: customer, messages: page.messages,
                                              hasMore: page.hasMore)))
        } catch {
            context.send(.error(ErrorFrame(code: .storeFailed, message: "history could not be read; try again", ref: request.requestId)))
        }
    }

    static func read(_ marker: ReadMarker, in context: inout FrameContext) async {
        guard let customer = context.resolve(marker.conversation, ref: nil) else { return }
        guard marker.seq >= 0 else {
            context.reject(.invalidFrame, "field \"seq\" must not be negative")
            return
        }
        let connection = context.connection
        do {
            guard let stored = try await context.services.readMarkers.markRead(user: connection.user, customer: customer,
                                                                               seq: marker.seq, audience: Audience(connection.role)) else {
                context.reject(.unknownConversation, "no conversation with \(customer) yet")
                return
            }
            await context.services.bus.publish(.read(stored, role: connection.role, origin: connection.id))
        } catch {
            context.send(.error(ErrorFrame(code: .storeFailed, message: "the read marker could not be stored; try again")))
        }
    }
}
