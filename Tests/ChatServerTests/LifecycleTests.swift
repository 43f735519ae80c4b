import ChatClient
import ChatProtocol
import ChatServerFixture
import ChatStore
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import NIOSSL
import TestProcesses
import Testing

@Suite("Lifecycle, durability and operations", .stopsServers)
struct LifecycleTests {
    @Test("stopped and started again on the same files, all data is intact")
    func restart() async throws {
        let directory = TestServer.makeDirectory()
        var server = try await TestServer.start(directory: directory)
        let customerToken = try await server.makeToken("alice", role: .customer)
        let agentToken = try await server.makeToken("sam", role: .agent)
        let customer = try await server.connect("alice", token: customerToken, lastSeq: 0)
        let agent = try await server.connect("sam", token: agentToken)
        for index in 1...10 { try customer.send("before \(index)") }
        for _ in 1...10 { _ = try await customer.ack() }
        try agent.connection.send(.read(ReadMarker(conversation: "alice", seq: 4)))
        _ = try await agent.rosterEntry("alice") { $0.readSeq == 4 }
        await server.stop()

        server = try await TestServer.start(directory: directory)
        let back = try await server.connect("alice", token: customerToken, lastSeq: 0)
        var texts: [String] = []
        for _ in 1...10 { texts.append(try await back.message().text) }
        #expect(texts == (1...10).map { "before \($0)" })
        try back.send("after restart")
        #expect(try await back.ack().seq == 11)
        let agentAgain = try await server.connect("sam", token: agentToken)
        let entry = try #require(try await agentAgain.roster().first { $0.customer == "alice" })
        #expect(entry.readSeq == 4)
        #expect(entry.unread == 7)
        // Every migration of schema/ applied, once each, in order: a second server on the same files adds none.
        let second = try await TestServer.start(directory: directory)
        let applied = try second.database().appliedMigrations()
        await second.stop()
        let schema = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../schema").path
        let shipped = try FileManager.default.contentsOfDirectory(atPath: schema).filter { $0.hasSuffix(".sql") }
            .map { String($0.dropLast(4)) }.sorted()
        #expect(shipped.count >= 6 && applied == shipped)
        await server.stop()
    }

    @Test("graceful shutdown closes connections with 1001 after storing what was in flight")
    func gracefulShutdown() async throws {
        let server = try await TestServer.start()
        let customer = try await server.join("alice", role: .customer)
        for index in 1...50 { try customer.send("m\(index)", clientId: "id-\(index)") }
        // Wait for the first ack so the burst is in the server, then shut down at once.
        _ = try await customer.ack()
        let stopping = Task { await server.stop() }
        var acked = 1
        var closeInfo: CloseInfo?
        while closeInfo == nil {
            do {
                _ = try await customer.ack()
                acked += 1
            } catch ChatConnectionError.closed(let info) {
                closeInfo = info
            }
        }
        await stopping.value
        #expect(closeInfo?.code == CloseCode.goingAway)
        // Everything acknowledged is stored; nothing is stored twice.
        let stored = try await SQLiteMessageStore(database: try server.database()).history(customer: "alice", limit: 200).messages
        #expect(stored.count >= acked)
        #expect(Set(stored.map(\.clientId)).count == stored.count)
    }

    @Test("healthz answers and metrics count connections, messages, deliveries and latency")
    func healthAndMetrics() async throws {
        let server = try await TestServer.start()
        let health = try await server.get("/healthz")
        #expect(health.status == 200)
        #expect(health.body.contains("\"status\":\"ok\""))
        let agent = try await server.join("sam", role: .agent)
        let customer = try await server.join("alice", role: .customer)
        for _ in 1...3 { try customer.send("hi") }
        for _ in 1...3 { _ = try await agent.message() }
        let metrics = try await server.get("/metrics").body
        #expect(metrics.contains(#"chat_connections{role="customer"} 1"#))
        #expect(metrics.contains(#"chat_connections{role="agent"} 1"#))
        #expect(metrics.contains("chat_messages_stored_total 3"))
        #expect(metrics.contains("chat_messages_delivered_total 3"))
        #expect(metrics.contains("chat_delivery_latency_seconds_count 3"))
        await server.stop()
    }

    @Test("TLS: the server speaks wss:// with --tls-cert and --tls-key")
    func tls() async throws {
        let directory = TestServer.makeDirectory()
        let cert = directory + "/cert.pem", key = directory + "/key.pem"
        let openssl = try await runTool("/usr/bin/openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                                                            "-out", cert, "-days", "1", "-subj", "/CN=localhost"])
        try #require(openssl.status == 0, "openssl could not make a test certificate: \(openssl.stderr)")
        let server = try await TestServer.start(directory: directory) {
            $0.tlsCertificatePath = cert
            $0.tlsKeyPath = key
        }
        let token = try await server.makeToken("alice", role: .customer)
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(cert))
        tls.certificateVerification = .noHostnameVerification
        let connection = ChatConnection(url: "wss://localhost:\(server.port)/ws", bearer: token, tlsConfiguration: tls)
        let welcome = try await connection.hello(Hello(lastSeq: 0))
        #expect(welcome.user == "alice")
        await server.stop()
    }

    @Test("crash: every acknowledged message survives SIGKILL, exactly once")
    func crashSafety() async throws {
        let binary = try builtExecutable("chat-server")
        let directory = TestServer.makeDirectory()
        let token = try await SQLiteTokenStore(database: try ChatDatabase(path: DataDirectory(directory).databasePath))
            .create(username: "alice", role: .customer).token
        var child = try await offPool { try ServerProcess(binary: binary, directory: directory, arguments: ["--rate", "100000", "--burst", "100000"]) }
        let client = ChatConnection(url: "ws://127.0.0.1:\(child.port)/ws", bearer: token)
        _ = try await client.hello(Hello(lastSeq: 0))
        var acked: [String: Int] = [:]
        let total = 400
        for index in 0..<total {
            try client.send(.send(Send(clientId: "crash-\(index)", text: "message \(index)")))
        }
        // Kill the server part-way through the acknowledgements.
        while acked.count < total / 2 {
            let ack = try await client.receive(timeout: frameWait) { if case .ack(let ack) = $0 { ack } else { nil } }
            acked[ack.clientId] = ack.seq
        }
        try await offPool { [child] in child.kill() }
        while let incoming = try? await client.receive(timeout: .milliseconds(500)) {
            if case .ack(let ack)? = incoming.frame { acked[ack.clientId] = ack.seq }
        }

        child = try await offPool { try ServerProcess(binary: binary, directory: directory, arguments: ["--rate", "100000", "--burst", "100000"]) }
        let stored = try await SQLiteMessageStore(database: try ChatDatabase(path: DataDirectory(directory).databasePath))
            .history(customer: "alice", limit: 10_000).messages
        let storedIds = Dictionary(grouping: stored, by: \.clientId)
        for (clientId, seq) in acked {
            #expect(storedIds[clientId]?.count == 1, "\(clientId) acknowledged but stored \(storedIds[clientId]?.count ?? 0) times")
            #expect(storedIds[clientId]?.first?.seq == seq)
        }
        #expect(stored.map(\.seq) == Array(1...stored.count), "sequences have no gaps")

        // Resending everything after the restart stores only what was missing, once.
        let again = ChatConnection(url: "ws://127.0.0.1:\(child.port)/ws", bearer: token)
        _ = try await again.hello(Hello(lastSeq: stored.count))
        for index in 0..<total { try again.send(.send(Send(clientId: "crash-\(index)", text: "message \(index)"))) }
        var duplicates = 0
        for _ in 0..<total {
            let ack = try await again.receive(timeout: .seconds(10)) { if case .ack(let ack) = $0 { ack } else { nil } }
            if ack.duplicate { duplicates += 1 }
        }
        #expect(duplicates == stored.count)
        let final = try await SQLiteMessageStore(database: try ChatDatabase(path: DataDirectory(directory).databasePath)).messageCount()
        #expect(final == total)
        try await offPool { [child] in child.kill() }
    }
}
