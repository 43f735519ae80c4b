import ChatClient
import ChatProtocol
@testable import ChatServer
@_spi(Testing) import ChatServerFixture
@_spi(Testing) import ChatStore
import Foundation
import TestProcesses
import Testing

@Suite("Authentication", .stopsServers)
struct AuthenticationTests {
    @Test("tokens: 43 base64url characters, never starting with '-' (a command line would read that as an option)")
    func tokenShape() {
        let alphabet = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        var tokens = Set<String>()
        // 3,000 tokens: about 47 would start with '-' if nothing prevented it.
        for _ in 0..<3000 {
            let token = Tokens.generate()
            #expect(token.count == 43 && token.allSatisfy(alphabet.contains) && !token.hasPrefix("-"), "\(token)")
            tokens.insert(token)
        }
        #expect(tokens.count == 3000)
    }

    @Test("a database failure keeps SQLite's result code and its message, not only a string")
    func databaseFailureKeepsItsCause() async throws {
        let directory = TestServer.makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let database = try ChatDatabase(path: DataDirectory(directory).databasePath)
        let tokens = SQLiteTokenStore(database: database)
        let token = try await tokens.create(username: "alice", role: .customer).token
        try await RawSQLite(path: database.path).execute("ALTER TABLE sessions RENAME TO sessions_away")
        do {
            _ = try await tokens.authenticate(token: token)
            Issue.record("a token was checked against a missing table")
        } catch {
            guard case .database(let failure) = error else { Issue.record("not a database error: \(error)"); return }
            #expect(failure.primaryResultCode == 1, "SQLITE_ERROR, got \(String(describing: failure.resultCode))")
            #expect(failure.description.contains("no such table"))
        }
    }

    @Test("a valid token in the Authorization header is accepted")
    func headerToken() async throws {
        let server = try await TestServer.start()
        let token = try await server.makeToken("alice", role: .customer)
        let client = try await server.connect("alice", token: token)
        #expect(client.welcome.user == "alice")
        #expect(client.welcome.role == .customer)
        #expect(client.welcome.protocolVersion == 1)
        await server.stop()
    }

    @Test("a valid token in the hello frame is accepted (clients that cannot set headers)")
    func helloToken() async throws {
        let server = try await TestServer.start()
        let token = try await server.makeToken("sam", role: .agent)
        let connection = ChatConnection(url: server.url)
        let welcome = try await connection.hello(Hello(token: token))
        #expect(welcome.user == "sam")
        #expect(welcome.role == .agent)
        await server.stop()
    }

    private func expectRefused(_ server: TestServer, hello: Hello, bearer: String? = nil, code: UInt16,
                               reasonContains: String) async throws {
        let connection = ChatConnection(url: server.url, bearer: bearer)
        try connection.send(.hello(hello))
        let info = await connection.closed(timeout: frameWait)
        #expect(info?.code == code, "close code")
        #expect(info?.reason?.contains(reasonContains) == true, "reason was \(info?.reason ?? "nil")")
    }

    @Test("wrong, expired, revoked and other users' tokens are refused with 4001 and a reason")
    func refusedTokens() async throws {
        let server = try await TestServer.start()
        let good = try await server.makeToken("alice", role: .customer)
        try await expectRefused(server, hello: Hello(token: "not-a-token"), code: CloseCode.authenticationFailed, reasonContains: "unknown token")
        try await expectRefused(server, hello: Hello(), code: CloseCode.authenticationFailed, reasonContains: "no token")

        let expired = try await server.makeToken("bob", role: .customer, expiresAt: epochMilliseconds() - 1000)
        try await expectRefused(server, hello: Hello(token: expired), code: CloseCode.authenticationFailed, reasonContains: "expired")

        let revoked = try await server.makeToken("carol", role: .customer)
        try await SQLiteTokenStore(database: try server.database()).revoke(username: "carol")
        try await expectRefused(server, hello: Hello(token: revoked), code: CloseCode.authenticationFailed, reasonContains: "revoked")

        try await expectRefused(server, hello: Hello(user: "mallory"), bearer: good, code: CloseCode.authenticationFailed,
                                reasonContains: "does not belong")
        await server.stop()
    }

    @Test("a first frame that is not hello, or no common protocol version, closes with a documented code")
    func helloRules() async throws {
        let server = try await TestServer.start()
        let token = try await server.makeToken("alice", role: .customer)
        let connection = ChatConnection(url: server.url, bearer: token)
        try connection.send(.send(Send(clientId: "x", text: "hi")))
        let info = await connection.closed(timeout: frameWait)
        #expect(info?.code == CloseCode.helloExpected)

        let future = ChatConnection(url: server.url, bearer: token)
        try future.send(.hello(Hello(protocolVersions: [99])))
        #expect(await future.closed(timeout: frameWait)?.code == CloseCode.unsupportedProtocol)
        await server.stop()
    }

    @Test("a connection that never says hello is closed after the hello timeout")
    func helloTimeout() async throws {
        let server = try await TestServer.start { $0.helloTimeout = .milliseconds(300) }
        let connection = ChatConnection(url: server.url)
        let info = await connection.closed(timeout: frameWait)
        #expect(info?.code == CloseCode.helloExpected)
        await server.stop()
    }

    @Test("revoking a token cuts its live session within a second", arguments: StoreBackend.allCases)
    func liveRevocation(on backend: StoreBackend) async throws {
        try await backend.withServer { server in
            let client = try await server.join("alice", role: .customer)
            _ = try await client.synced()
            _ = try await server.storage.tokens.revoke(username: "alice")
            // The server notices revocations by polling (every 100 ms here); the cut must come from that poll, with
            // its code. No wall-clock bound on this side: when the whole suite runs on 2 cores, this task can resume
            // seconds late. The shipped poll interval is what bounds the delay.
            let info = await client.connection.closed(timeout: frameWait)
            #expect(info?.code == CloseCode.sessionRevoked)
            #expect(ServerConfiguration().revocationPollInterval <= .milliseconds(500), "sessions are cut within a second")
        }
    }

    @Test("repeated failures from one address are slowed down")
    func throttling() async throws {
        let server = try await TestServer.start()
        var durations: [Duration] = []
        for _ in 0..<6 {
            let started = ContinuousClock.now
            let connection = ChatConnection(url: server.url)
            try connection.send(.hello(Hello(token: "wrong")))
            #expect(await connection.closed(timeout: frameWait)?.code == CloseCode.authenticationFailed)
            durations.append(ContinuousClock.now - started)
        }
        // The first three are answered at once; from the fourth on each waits (250 ms, 500 ms, 1 s...). A lower
        // bound only: a loaded machine makes any attempt slow, so comparing attempts' times would be a race. The
        // schedule itself is checked exactly below.
        #expect(durations[5] >= .milliseconds(900), "sixth failure took \(durations[5])")
        let metrics = try await server.get("/metrics").body
        #expect(metrics.contains("chat_auth_failures_total 6"))
        await server.stop()
    }

    @Test("the throttle: three free failures, then 250 ms doubling up to 8 s; per address; a success clears it")
    func throttleSchedule() async {
        let throttle = AuthThrottle()
        var delays: [Duration] = []
        for _ in 0..<10 {
            delays.append(await throttle.delay(for: "192.0.2.1"))
            await throttle.recordFailure("192.0.2.1")
        }
        #expect(delays == [.zero, .zero, .zero, .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2),
                           .seconds(4), .seconds(8), .seconds(8)])
        #expect(await throttle.delay(for: "192.0.2.2") == .zero)
        await throttle.recordSuccess("192.0.2.1")
        #expect(await throttle.delay(for: "192.0.2.1") == .zero)
    }

    @Test("an upgrade request far larger than a connection's first receive buffer (a browser's cookies) is read whole")
    func largeUpgradeRequest() async throws {
        let server = try await TestServer.start()
        let token = try await server.makeToken("alice", role: .customer)
        let port = server.port
        struct Welcomed: Error {}
        let welcomed = try await offPool { () throws -> Bool in
            let cookie = "Cookie: " + (0..<200).map { "c\($0)=" + String(repeating: "v", count: 24) }.joined(separator: "; ")
            let socket = try RawWebSocket(port: port, bearer: token, extraHeaders: [cookie, "User-Agent: " + String(repeating: "u", count: 400)])
            try socket.sendText(#"{"type":"hello","protocol":[1],"lastSeq":0}"#)
            do {
                _ = try socket.readFrames(for: .seconds(10)) { opcode, payload in
                    if opcode == 0x1, String(decoding: payload, as: UTF8.self).contains(#""type":"welcome""#) { throw Welcomed() }
                }
            } catch is Welcomed {
                return true
            }
            return false
        }
        #expect(welcomed)
        await server.stop()
    }
}
