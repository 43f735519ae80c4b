@testable import ChatServer
import ChatStorePostgres
import Testing

@Suite("Events between nodes")
struct BusEventTests {
    @Test("queued events go out in as few NOTIFY payloads as fit under PostgreSQL's limit, in order; one too big is left out")
    func payloadsSplit() {
        var events = (0..<300).map { BusEvent(node: "n", presence: PresenceChange(user: "user\($0)", role: .customer, online: true, node: "n")) }
        var huge = BusEvent(node: "n", presence: PresenceChange(user: String(repeating: "x", count: 9000), role: .agent, online: true, node: "n"))
        huge.kind = "presence"
        events.insert(huge, at: 10)
        let payloads = BusEvent.payloads(events, limit: PostgresFanOut.maxPayloadBytes)
        #expect(payloads.count > 1)
        #expect(payloads.allSatisfy { $0.utf8.count <= PostgresFanOut.maxPayloadBytes })
        #expect(payloads.flatMap(BusEvent.decode).map(\.user) == (0..<300).map { "user\($0)" })
    }
}
