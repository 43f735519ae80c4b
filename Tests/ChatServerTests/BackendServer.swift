import ChatProtocol
import ChatServer
import ChatServerFixture
import ChatStore
import Foundation

/// One server on a new database of a backend, with that database's stores: the fixture of the conversation tests
/// that run on SQLite and on PostgreSQL alike. Tokens are made in the server's database, whichever it is.
struct BackendServer: Sendable {
    let server: TestServer
    let storage: ChatStorage
    /// Runs SQL on the server's database from outside, as a fault would change it.
    let execute: StoreBackend.RawSQL

    var url: String { server.url }

    func makeToken(_ user: String, role: Role) async throws -> String {
        try await storage.tokens.create(username: user, role: role).token
    }

    func connect(_ user: String, token: String, lastSeq: Int? = nil, lastSeqs: [String: Int]? = nil) async throws -> Client {
        try await server.connect(user, token: token, lastSeq: lastSeq, lastSeqs: lastSeqs)
    }

    /// Creates a user with a token and connects it.
    func join(_ user: String, role: Role) async throws -> Client {
        try await connect(user, token: try await makeToken(user, role: role), lastSeq: role == .customer ? 0 : nil)
    }
}

extension StoreBackend {
    /// A server on a new database of this backend, stopped after `body` whether it throws or not.
    func withServer(configure: @escaping @Sendable (inout ServerConfiguration) -> Void = { _ in },
                    _ body: @escaping @Sendable (BackendServer) async throws -> Void) async throws {
        try await withServerStorage(configure: configure) { servers, storage, execute in
            try await body(BackendServer(server: servers[0], storage: storage, execute: execute))
        }
    }
}
