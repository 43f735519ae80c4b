import ChatProtocol
import Foundation
import TestProcesses
import Testing

@Suite("Keep-alive")
struct KeepAliveTests {
    @Test("a silent client is pinged, and closed with 1001 when it stays silent; one that answers pings stays")
    func pingsAndTimesOut() async throws {
        let server = try await TestServer.start { $0.pingInterval = .milliseconds(300) }
        let silentToken = try await server.makeToken("alice", role: .customer)
        let livelyToken = try await server.makeToken("bob", role: .customer)
        let port = server.port
        let hello = #"{"type":"hello","protocol":[1],"lastSeq":0}"#

        // Silent: reads, never answers. A ping comes, then close 1001 well before 10 s.
        let silent = try await offPool { () throws -> (pings: Int, ending: RawWebSocket.Ending, seconds: Double) in
            let socket = try RawWebSocket(port: port, bearer: silentToken)
            try socket.sendText(hello)
            let started = ContinuousClock.now
            var pings = 0
            let ending = socket.readFrames(for: .seconds(10)) { opcode, _ in
                if opcode == 0x9 { pings += 1 }
            }
            return (pings, ending, (ContinuousClock.now - started) / .seconds(1))
        }
        #expect(silent.pings == 1)
        #expect(silent.ending == .closeFrame(1001))
        #expect(silent.seconds < 5)

        // Lively: answers every ping with a pong (as WebSocket libraries do); still open after ten periods.
        let lively = try await offPool { () throws -> (pings: Int, ending: RawWebSocket.Ending) in
            let socket = try RawWebSocket(port: port, bearer: livelyToken)
            try socket.sendText(hello)
            var pings = 0
            let ending = try socket.readFrames(for: .seconds(3)) { opcode, payload in
                guard opcode == 0x9 else { return }
                pings += 1
                try socket.sendFrame(opcode: 0xA, payload: payload)
            }
            return (pings, ending)
        }
        #expect(lively.ending == .stillOpen)
        #expect(lively.pings >= 2, "pinged while it said nothing else")
        await server.stop()
    }
}
