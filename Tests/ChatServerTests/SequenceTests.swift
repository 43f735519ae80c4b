import ChatProtocol
import ChatServerFixture
import ChatStore
import Foundation
import Logging
import Testing

@Suite("Sequence allocation", .stopsServers)
struct SequenceTests {
    private static let logger: Logger = {
        var logger = Logger(label: "test.sequence")
        logger.logLevel = .error
        return logger
    }()

    /// Two writers on one database that share no memory, as two processes or nodes would be: two `ChatDatabase`s
    /// on one SQLite file (each with its own connection and its own cache of conversation counters), or two
    /// PostgreSQL pools.
    @Test("two writers on one database: sequences stay unique and gap-free, counters stay right", arguments: StoreBackend.allCases)
    func twoWriters(on backend: StoreBackend) async throws {
        try await backend.withTwoNodes(logger: Self.logger) { first, second in
            _ = try await first.tokens.create(username: "alice", role: .customer)
            func send(_ store: any MessageStore, _ id: String) async throws -> Int? {
                let outcome = try await store.commit([OutgoingMessage(sender: "alice", senderRole: .customer, clientId: id,
                                                                      text: id, target: .conversation("alice"))])
                guard case .stored(let messages, duplicate: false)? = outcome.first else { return nil }
                return messages.first?.seq
            }
            var seqs: [Int?] = []
            for round in 0..<5 {
                seqs.append(try await send(first.messages, "a\(round)"))
                seqs.append(try await send(first.messages, "b\(round)"))
                seqs.append(try await send(second.messages, "c\(round)"))
            }
            #expect(seqs == (1...15).map { $0 })
            let history = try await first.messages.history(customer: "alice", limit: 100).messages
            #expect(history.map(\.seq) == Array(1...15))
            let summary = try await second.messages.conversationSummaries().first
            #expect(summary?.state == ConversationState(lastSeq: 15, customerMessages: 15))
            // A resend through the other writer is the same message, not a new one.
            let resend = try await second.messages.commit([OutgoingMessage(sender: "alice", senderRole: .customer, clientId: "a0",
                                                                           text: "a0", target: .conversation("alice"))])
            guard case .stored(let messages, duplicate: true)? = resend.first else {
                Issue.record("resend was not a duplicate: \(resend)")
                return
            }
            #expect(messages.first?.seq == 1)
            #expect(try await first.messages.messageCount() == 15)
        }
    }
}
