import ChatStore
import Hummingbird

/// The bearer-token check of the HTTP media routes as middleware: the request goes on with its user in
/// `context.user`, or is refused with 401 (a missing or wrong token) or 503 (tokens cannot be checked right now).
/// The check itself is the one the WebSocket upgrade makes (`ChatServices.authenticate`).
struct TokenAuthentication: RouterMiddleware {
    typealias Context = ChatRequestContext
    let services: ChatServices

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let token = ConnectionHandler.bearerToken(in: request.headers[.authorization])
        switch await services.authenticate(token: token, from: context.peerAddress) {
        case .accepted(let record):
            var context = context
            context.user = record
            return try await next(request, context)
        case .refused:
            throw MediaHTTPError.unauthorized
        case .unavailable:
            throw MediaHTTPError(status: .serviceUnavailable, code: .storeFailed, message: "cannot check tokens right now; retry later")
        }
    }
}

extension ChatRequestContext {
    /// The user `TokenAuthentication` let through; routes behind it only.
    func authenticatedUser() throws -> SessionRecord {
        guard let user else { throw MediaHTTPError.unauthorized }
        return user
    }
}
