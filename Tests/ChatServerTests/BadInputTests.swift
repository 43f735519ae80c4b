import ChatClient
import ChatProtocol
import ChatServerFixture
import ChatStore
import Foundation
import TestProcesses
import Testing

@Suite("Bad input", .stopsServers)
struct BadInputTests {
    /// Sends `text` as a raw frame and expects an error with `code`; then checks the connection still works.
    private func expectError(_ client: Client, raw text: String, code: ErrorCode, ref: String? = nil) async throws {
        client.connection.sendText(text)
        let error = try await client.error()
        #expect(error.code == code, "for \(text.prefix(80))")
        #expect(!error.message.isEmpty)
        if let ref { #expect(error.ref == ref) }
        _ = try await client.framesUntilPong()
    }

    @Test("malformed, unknown, incomplete and mistyped frames get error frames and store nothing")
    func malformedFrames() async throws {
        let server = try await TestServer.start()
        let customer = try await server.join("alice", role: .customer)
        try await expectError(customer, raw: "{not json", code: .badJSON)
        try await expectError(customer, raw: "[1,2,3]", code: .badJSON)
        try await expectError(customer, raw: "\"send\"", code: .badJSON)
        try await expectError(customer, raw: #"{"text":"no type"}"#, code: .unknownType)
        try await expectError(customer, raw: #"{"type":"explode"}"#, code: .unknownType)
        try await expectError(customer, raw: #"{"type":"send","clientId":"c1"}"#, code: .invalidFrame, ref: "c1")
        try await expectError(customer, raw: #"{"type":"send","clientId":"c2","text":42}"#, code: .invalidFrame, ref: "c2")
        try await expectError(customer, raw: #"{"type":"send","clientId":"","text":"hi"}"#, code: .invalidFrame)
        try await expectError(customer, raw: #"{"type":"send","clientId":"c3","text":"   "}"#, code: .invalidFrame)
        try await expectError(customer, raw: #"{"type":"read","seq":"x"}"#, code: .invalidFrame)
        try await expectError(customer, raw: #"{"type":"read","seq":-1}"#, code: .invalidFrame)
        try await expectError(customer, raw: #"{"type":"history","before":-5}"#, code: .invalidFrame)
        try await expectError(customer, raw: #"{"type":"hello","protocol":[1]}"#, code: .alreadyAuthenticated)
        #expect(try await SQLiteMessageStore(database: try server.database()).messageCount() == 0)

        // The connection is still usable.
        try customer.send("still here")
        #expect(try await customer.ack().seq == 1)
        await server.stop()
    }

    @Test("text over the size limit is refused; a frame over the hard limit closes with 1009")
    func sizeLimits() async throws {
        let server = try await TestServer.start { $0.maxTextBytes = 1000; $0.maxFrameBytes = 64 * 1024 }
        let customer = try await server.join("alice", role: .customer)
        try customer.send(String(repeating: "é", count: 501), clientId: "big")
        let error = try await customer.error()
        #expect(error.code == .tooLarge)
        #expect(error.ref == "big")
        try customer.send(String(repeating: "x", count: 1000), clientId: "fits")
        #expect(try await customer.ack().clientId == "fits")
        customer.connection.sendText(String(repeating: "y", count: 40_000))
        #expect(try await customer.error().code == .tooLarge)
        #expect(try await SQLiteMessageStore(database: try server.database()).messageCount() == 1)

        customer.connection.sendText(String(repeating: "z", count: 70_000))
        #expect(await customer.connection.closed(timeout: frameWait)?.code == CloseCode.messageTooBig)
        await server.stop()
    }

    @Test("a binary frame where none is expected gets unexpected_binary")
    func binaryFrame() async throws {
        let server = try await TestServer.start()
        let customer = try await server.join("alice", role: .customer)
        customer.connection.sendBinary([0, 1, 2, 3])
        #expect(try await customer.error().code == .unexpectedBinary)
        _ = try await customer.framesUntilPong()
        await server.stop()
    }

    @Test("a customer cannot address another customer's conversation")
    func otherConversation() async throws {
        let server = try await TestServer.start()
        let alice = try await server.join("alice", role: .customer)
        let bob = try await server.join("bob", role: .customer)
        try alice.send("hi bob", clientId: "x", to: "bob")
        let error = try await alice.error()
        #expect(error.code == .forbidden)
        #expect(error.ref == "x")
        try alice.connection.send(.history(HistoryRequest(conversation: "bob")))
        #expect(try await alice.error().code == .forbidden)
        try alice.connection.send(.read(ReadMarker(conversation: "bob", seq: 1)))
        #expect(try await alice.error().code == .forbidden)
        #expect(!(try await bob.framesUntilPong()).contains { if case .message = $0 { true } else { false } })
        #expect(try await SQLiteMessageStore(database: try server.database()).messageCount() == 0)
        await server.stop()
    }

    @Test("malformed workflow frames: unknown status, a snooze in the past, bad names and ids; nothing stored, the connection goes on")
    func workflowFrames() async throws {
        let server = try await TestServer.start()
        let agent = try await server.join("sam", role: .agent)
        let customer = try await server.join("alice", role: .customer)
        try customer.send("hello", clientId: "c1")
        _ = try await customer.ack()
        let refused: [(String, ErrorCode)] = [
            (#"{"type":"setStatus","requestId":"r1","conversation":"alice","status":"closed"}"#, .invalidFrame),
            (#"{"type":"setStatus","requestId":"r2","conversation":"alice","status":"snoozed","until":1}"#, .invalidFrame),
            (#"{"type":"setStatus","requestId":"r3","conversation":"alice","status":"snoozed","until":"soon"}"#, .invalidFrame),
            (#"{"type":"setStatus","requestId":"r4","conversation":"../etc","status":"open"}"#, .invalidFrame),
            (#"{"type":"setStatus","requestId":"\u0001","conversation":"alice","status":"open"}"#, .invalidFrame),
            (#"{"type":"assign","requestId":"r6","conversation":"alice","agent":"no body"}"#, .invalidFrame),
            (#"{"type":"assign","requestId":"r7","conversation":"alice","agent":"ghost"}"#, .invalidFrame),
            (#"{"type":"note","clientId":"n1","conversation":"alice","text":"   "}"#, .invalidFrame),
            (#"{"type":"note","clientId":"n2","conversation":"nobody","text":"x"}"#, .unknownConversation),
        ]
        for (frame, code) in refused {
            agent.connection.sendText(frame)
            let error = try await agent.error()
            #expect(error.code == code, "\(frame): \(error.message)")
        }
        #expect(try await SQLiteMessageStore(database: try server.database()).messageCount() == 1, "only alice's message")
        try agent.send("still here", clientId: "a1", to: "alice")
        #expect(try await agent.ack().seq == 2)
        await server.stop()
    }

    @Test("agents must name an existing customer")
    func agentTargets() async throws {
        let server = try await TestServer.start()
        let agent = try await server.join("sam", role: .agent)
        try agent.send("hi", clientId: "n1")
        #expect(try await agent.error().code == .invalidFrame)
        try agent.send("hi", clientId: "n2", to: "nobody")
        let error = try await agent.error()
        #expect(error.code == .unknownConversation)
        #expect(error.ref == "n2")
        try agent.send("hi", clientId: "n3", to: "../etc")
        #expect(try await agent.error().code == .invalidFrame)
        #expect(try await SQLiteMessageStore(database: try server.database()).messageCount() == 0)
        await server.stop()
    }

    @Test("frames faster than the rate limit are refused with retryAfterMs; a flood closes with 4008")
    func rateLimitAndFlood() async throws {
        let server = try await TestServer.start {
            $0.messagesPerSecond = 0.2  // slow refill: a loaded machine cannot earn a sixth token mid-test
            $0.burst = 5
            $0.floodThreshold = 30
        }
        let customer = try await server.join("alice", role: .customer)
        for index in 0..<8 { try customer.send("m\(index)", clientId: "m\(index)") }
        var acks = 0
        var limited: [ErrorFrame] = []
        while acks + limited.count < 8 {
            let frame = try await customer.connection.receive(timeout: frameWait) { frame -> ServerFrame? in
                switch frame {
                case .ack, .error: frame
                default: nil
                }
            }
            if case .ack = frame { acks += 1 }
            if case .error(let error) = frame { limited.append(error) }
        }
        #expect(acks == 5)
        #expect(limited.count == 3)
        #expect(limited.allSatisfy { $0.code == .rateLimited && ($0.retryAfterMs ?? 0) > 0 })
        // Each refusal names the message it refused, so the client knows what to resend.
        #expect(Set(limited.compactMap(\.ref)) == ["m5", "m6", "m7"])
        #expect(try await SQLiteMessageStore(database: try server.database()).messageCount() == 5)

        for index in 0..<60 { customer.connection.sendText("garbage \(index)") }
        #expect(await customer.connection.closed(timeout: frameWait)?.code == CloseCode.flood)
        await server.stop()
    }
}
