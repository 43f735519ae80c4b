import ChatStore

/// The outcome of a token check.
enum Authentication: Sendable {
    case accepted(SessionRecord)
    case refused(AuthFailure)
    /// The token store could not answer (the error is logged): the client should retry later.
    case unavailable
}

extension ChatServices {
    /// The token check of every entry point (the WebSocket hello, the HTTP media routes), so that both refuse
    /// alike: repeated failures from one address wait longer and longer before being answered (`AuthThrottle`), a
    /// failure is counted and logged, and a store that cannot answer is told apart from a wrong token.
    func authenticate(token: String?, username: String? = nil, from address: String) async -> Authentication {
        let delay = await throttle.delay(for: address)
        if delay > .zero { try? await Task.sleep(for: delay) }
        let result: Result<SessionRecord, AuthFailure>
        do {
            result = try await tokens.authenticate(token: token ?? "", username: username)
        } catch {
            logger.error("token check failed", metadata: ["error": "\(error)"])
            return .unavailable
        }
        switch result {
        case .success(let record):
            await throttle.recordSuccess(address)
            return .accepted(record)
        case .failure(let failure):
            await throttle.recordFailure(address)
            metrics.failedAuthentications.increment()
            logger.info("authentication failed", metadata: ["peer": "\(address)", "reason": "\(failure)"])
            return .refused(failure)
        }
    }
}
