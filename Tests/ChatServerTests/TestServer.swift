import ChatClient
import ChatProtocol
import ChatServer
import ChatServerFixture
import ChatStore
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Logging
import ServiceLifecycle
import TestProcesses
import Testing

extension TestServer {
    /// Connects and completes hello; the token goes in the Authorization header.
    func connect(_ user: String, token: String, lastSeq: Int? = nil, lastSeqs: [String: Int]? = nil) async throws -> Client {
        let (connection, welcome) = try await open(user, token: token, lastSeq: lastSeq, lastSeqs: lastSeqs)
        return Client(connection: connection, welcome: welcome)
    }

    /// Creates a user with a token and connects it.
    func join(_ user: String, role: Role) async throws -> Client {
        try await connect(user, token: try await makeToken(user, role: role), lastSeq: role == .customer ? 0 : nil)
    }

    func get(_ path: String) async throws -> (status: Int, body: String) {
        let (data, response) = try await URLSession.shared.data(from: URL(string: httpBase + path)!)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
    }
}

/// A connected test client with helpers to wait for particular frames.
struct Client {
    let connection: ChatConnection
    let welcome: Welcome

    func send(_ text: String, clientId: String = UUID().uuidString, to conversation: String? = nil) throws {
        try connection.send(.send(Send(clientId: clientId, text: text, conversation: conversation)))
    }

    func ack(timeout: Duration = frameWait) async throws -> Ack {
        try await connection.receive(timeout: timeout) { if case .ack(let ack) = $0 { ack } else { nil } }
    }

    func message(timeout: Duration = frameWait) async throws -> ChatMessage {
        try await connection.receive(timeout: timeout) { if case .message(let message) = $0 { message } else { nil } }
    }

    func error(timeout: Duration = frameWait) async throws -> ErrorFrame {
        try await connection.receive(timeout: timeout) { if case .error(let error) = $0 { error } else { nil } }
    }

    func synced(timeout: Duration = frameWait) async throws -> Synced {
        try await connection.receive(timeout: timeout) { if case .synced(let synced) = $0 { synced } else { nil } }
    }

    func roster(timeout: Duration = frameWait) async throws -> [RosterEntry] {
        try await connection.receive(timeout: timeout) { frame -> [RosterEntry]? in
            switch frame {
            case .roster(let entries), .rosterUpdate(let entries): entries
            default: nil
            }
        }
    }

    /// Waits for a roster (update) entry of `customer` that satisfies `condition`.
    func rosterEntry(_ customer: String, timeout: Duration = frameWait, where condition: (RosterEntry) -> Bool) async throws -> RosterEntry {
        try await connection.receive(timeout: timeout) { frame -> RosterEntry? in
            switch frame {
            case .roster(let entries), .rosterUpdate(let entries):
                entries.first { $0.customer == customer && condition($0) }
            default: nil
            }
        }
    }

    /// Sends a ping and collects every frame that arrives before its pong: proves what did (not) arrive meanwhile.
    func framesUntilPong(timeout: Duration = frameWait) async throws -> [ServerFrame] {
        let id = UUID().uuidString
        try connection.send(.ping(requestId: id))
        var frames: [ServerFrame] = []
        while true {
            let incoming = try await connection.receive(timeout: timeout)
            guard let frame = incoming.frame else { continue }
            if case .pong(let requestId) = frame, requestId == id { return frames }
            frames.append(frame)
        }
    }
}

