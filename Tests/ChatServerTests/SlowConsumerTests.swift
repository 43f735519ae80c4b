import ChatClient
import ChatProtocol
import ChatServerFixture
import Foundation
import TestProcesses
import Testing

/// A client that stops reading fills its bounded outbound buffer and is closed with 4009; it loses nothing, because it
/// resumes by sequence. The buffer can fill in two places: the live outbox, and the resync buffer of a connection
/// still replaying its backlog.
@Suite("Slow consumers", .stopsServers)
struct SlowConsumerTests {
    /// 60 KB messages overflow the 256 KiB bound in a handful.
    private let text = String(repeating: "x", count: 60_000)

    private struct Setup {
        let server: TestServer
        let token: String
        let agent: Client
    }

    /// A server with a 256 KiB outbound bound, alice's token, and agent sam connected.
    private func start() async throws -> Setup {
        let server = try await TestServer.start {
            $0.outboundBufferBytes = 256 << 10
            $0.messagesPerSecond = 10_000
            $0.burst = 10_000
        }
        let token = try await server.makeToken("alice", role: .customer)
        return Setup(server: server, token: token, agent: try await server.join("sam", role: .agent))
    }

    /// Alice connects, asks for everything from sequence 0, and never reads.
    private func stalledClient(_ setup: Setup) async throws -> RawWebSocket {
        let port = setup.server.port
        let token = setup.token
        return try await offPool { () throws -> RawWebSocket in
            let socket = try RawWebSocket(port: port, bearer: token)
            try socket.sendText(#"{"type":"hello","protocol":[1],"lastSeq":0}"#)
            return socket
        }
    }

    /// Sam sends 8 big messages to alice and waits for their acks: small rounds keep his own queue (acks) well under
    /// the bound.
    private func sendRound(_ setup: Setup) async throws {
        for _ in 0..<8 { try setup.agent.send(text, to: "alice") }
        for _ in 0..<8 { _ = try await setup.agent.ack(timeout: .seconds(20)) }
    }

    private func disconnectCounted(_ setup: Setup) async throws -> Bool {
        try await setup.server.get("/metrics").body.contains("chat_slow_consumer_disconnects_total 1")
    }

    /// Waits up to `seconds` for the slow-consumer counter.
    private func waitForDisconnectCount(_ setup: Setup, seconds: Int) async throws -> Bool {
        for _ in 0..<(seconds * 10) {
            if try await disconnectCounted(setup) { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    /// Reconnecting from sequence 0 yields every message, in order, once.
    private func expectFullResume(_ setup: Setup, count: Int) async throws {
        let resumed = try await setup.server.connect("alice", token: setup.token, lastSeq: 0)
        var seqs: [Int] = []
        while seqs.count < count {
            seqs.append(try await resumed.message(timeout: frameWait).seq)
        }
        #expect(seqs == Array(1...count))
    }

    @Test("a client that stops reading is closed with 4009 and loses nothing: it resumes by sequence")
    func live() async throws {
        let setup = try await start()
        let stalled = try await stalledClient(setup)
        var sent = 0
        for _ in 0..<60 {
            try await sendRound(setup)
            sent += 8
            if try await disconnectCounted(setup) { break }
        }
        // The server sends close 4009; a client that reads nothing at all is cut off two seconds later.
        let closeCode = try await offPool { stalled.drainUntilClose() }
        #expect(closeCode == CloseCode.slowConsumer || closeCode == nil)
        #expect(try await waitForDisconnectCount(setup, seconds: 20), "the stalled client was never disconnected as a slow consumer")
        try await expectFullResume(setup, count: sent)
        await setup.server.stop()
    }

    @Test("a client that stops reading during its backlog replay is closed as a slow consumer, counted, and loses nothing")
    func duringReplay() async throws {
        let setup = try await start()
        // A backlog larger than the kernel's socket buffers (4 MiB send, 128 KiB receive here): its replay to a
        // client that reads nothing cannot finish.
        let rounds = 15
        for _ in 0..<rounds { try await sendRound(setup) }
        let stalled = try await stalledClient(setup)
        _ = try await setup.agent.rosterEntry("alice", timeout: .seconds(20)) { $0.online }
        // Live messages wait in the replaying connection's resync buffer, which is bounded like the outbound one.
        try await sendRound(setup)

        #expect(try await waitForDisconnectCount(setup, seconds: 30), "the replaying client was never disconnected as a slow consumer")
        _ = try await setup.agent.rosterEntry("alice", timeout: .seconds(20)) { !$0.online }
        let ending = try await offPool { stalled.readFrames(for: .seconds(20)) { _, _ in } }
        #expect(ending != .stillOpen)
        try await expectFullResume(setup, count: (rounds + 1) * 8)
        await setup.server.stop()
    }
}
