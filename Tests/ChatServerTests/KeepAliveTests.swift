import ChatProtocol
import ChatServerFixture
import Foundation
import NIOCore
import NIOEmbedded
import NIOWebSocket
import TestProcesses
import Testing
@testable import ChatServer

@Suite("Keep-alive", .stopsServers)
struct KeepAliveTests {
    @Test("a silent client is pinged, and closed with 1001 when it stays silent; one that answers pings stays")
    func pingsAndTimesOut() async throws {
        let server = try await TestServer.start { $0.pingInterval = .milliseconds(300) }
        let silentToken = try await server.makeToken("alice", role: .customer)
        let port = server.port
        let hello = #"{"type":"hello","protocol":[1],"lastSeq":0}"#

        // Silent: reads, never answers. A ping comes, then close 1001 well before 10 s.
        let silent = try await offPool { () throws -> (pings: Int, ending: RawWebSocket.Ending) in
            let socket = try RawWebSocket(port: port, bearer: silentToken)
            try socket.sendText(hello)
            var pings = 0
            let ending = socket.readFrames(for: .seconds(10)) { opcode, _ in
                if opcode == 0x9 { pings += 1 }
            }
            return (pings, ending)
        }
        #expect(silent.pings == 1)
        // Within the 10 s of reading, that is more than 30 periods: the close comes from the missed pong.
        #expect(silent.ending == .closeFrame(1001))

        await server.stop()

        // Lively: answers every ping with a pong (as WebSocket libraries do); still open after several periods. A
        // server of its own with a longer period: on a loaded machine an answer within 300 ms is not certain, and
        // a late answer is not what this case is about.
        let patient = try await TestServer.start { $0.pingInterval = .seconds(3) }
        let livelyToken = try await patient.makeToken("bob", role: .customer)
        let patientPort = patient.port
        let lively = try await offPool { () throws -> (pings: Int, ending: RawWebSocket.Ending) in
            let socket = try RawWebSocket(port: patientPort, bearer: livelyToken)
            try socket.sendText(hello)
            var pings = 0
            // Pings are due at about 6, 12 and 18 s; 20 s leaves room for a late timer. A pong has a whole period
            // (3 s) to arrive: in full runs on two cores a 2 s period was twice not enough for this thread's answer.
            let ending = try socket.readFrames(for: .seconds(20)) { opcode, payload in
                guard opcode == 0x9 else { return }
                pings += 1
                try socket.sendFrame(opcode: 0xA, payload: payload)
            }
            return (pings, ending)
        }
        #expect(lively.ending == .stillOpen)
        #expect(lively.pings >= 2, "pinged while it said nothing else")
        await patient.stop()
    }

    @Test("one sweep per event loop: each connection pinged and timed out on its own; the timer stops with the last connection")
    func sweepOfOneLoop() throws {
        let loop = EmbeddedEventLoop()
        let sweep = KeepAliveSweep(interval: .seconds(1), eventLoop: loop)
        let quiet = EmbeddedChannel(handler: KeepAliveHandler(sweep: sweep), loop: loop)
        let talker = EmbeddedChannel(handler: KeepAliveHandler(sweep: sweep), loop: loop)
        for channel in [quiet, talker] { try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait() }
        #expect(sweep.isRunning)
        func written(_ channel: EmbeddedChannel) throws -> [WebSocketOpcode] {
            var opcodes: [WebSocketOpcode] = []
            while let frame = try channel.readOutbound(as: WebSocketFrame.self) { opcodes.append(frame.opcode) }
            return opcodes
        }

        loop.advanceTime(by: .seconds(1))  // both just opened: nothing sent
        #expect(try written(quiet).isEmpty && written(talker).isEmpty)
        loop.advanceTime(by: .seconds(1))  // a silent period: a ping each
        #expect(try written(quiet) == [.ping])
        #expect(try written(talker) == [.ping])
        try talker.writeInbound(ByteBuffer(string: "pong"))
        loop.advanceTime(by: .seconds(1))  // the quiet one never answered: closed; the talker answered: left alone
        #expect(try written(quiet) == [.connectionClose])
        #expect(!quiet.isActive)
        #expect(try written(talker).isEmpty)
        #expect(talker.isActive)
        loop.advanceTime(by: .seconds(1))
        #expect(try written(talker) == [.ping])
        #expect(sweep.isRunning)
        _ = try talker.finish()
        #expect(!sweep.isRunning, "no connections left on the loop, no timer")
    }
}
