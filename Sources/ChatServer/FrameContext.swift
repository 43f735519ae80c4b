import ChatProtocol
import ChatStore

/// What every frame handler of a connection shares: who it is, the server's services, the limits, and how to
/// answer. Owned by the connection's `FrameDispatcher`.
struct FrameContext {
    let connection: Connection
    let services: ChatServices
    var limits: FrameLimits

    init(connection: Connection, services: ChatServices) {
        self.connection = connection
        self.services = services
        limits = FrameLimits(services.configuration)
    }

    var configuration: ServerConfiguration { services.configuration }

    func send(_ frame: ServerFrame) {
        if let buffer = try? encodeFrame(frame) { connection.outbox.send(buffer) }
    }

    /// Answers a bad frame with an error and counts it; too many in the flood window close the connection.
    mutating func reject(_ code: ErrorCode, _ message: String, ref: String? = nil, retryAfterMs: Int? = nil) {
        services.metrics.rejectedFrames.increment()
        send(.error(ErrorFrame(code: code, message: message, ref: ref, retryAfterMs: retryAfterMs)))
        if limits.recordRejection(window: configuration.floodWindow, threshold: configuration.floodThreshold) {
            connection.outbox.close(code: CloseCode.flood, reason: "too many rejected frames; slow down")
        }
    }

    /// The conversation a frame addresses: a customer's own, or the customer an agent names.
    mutating func resolve(_ requested: String?, ref: String?) -> String? {
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
}
