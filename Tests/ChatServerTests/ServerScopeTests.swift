import ChatServerFixture
import Foundation
import TestProcesses
import Testing

@Suite("The test server fixture")
struct ServerScopeTests {
    @Test("a test that throws before stopping its server: the scope stops it and removes its directory")
    func failingTestLeavesNothingRunning() async throws {
        let started = Started()
        let test = try #require(Test.current)
        await #expect(throws: TestFailure.self) {
            try await ServerScope().provideScope(for: test, testCase: Test.Case.current) {
                let server = try await TestServer.start()
                await started.set(server.port, server.directory)
                #expect((try? LoopbackSocket(port: server.port)) != nil)
                throw TestFailure("the test failed before its stop()")
            }
        }
        let (port, directory) = try #require(await started.value)
        #expect((try? LoopbackSocket(port: port)) == nil, "the server still accepts connections on \(port)")
        #expect(!FileManager.default.fileExists(atPath: directory))
    }
}

private actor Started {
    var value: (Int, String)?
    func set(_ port: Int, _ directory: String) { value = (port, directory) }
}
