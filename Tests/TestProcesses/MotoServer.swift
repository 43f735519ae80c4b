import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// moto's S3-compatible server (`moto_server`, from `pip install 'moto[server]'`; `.ci/run` installs it) on a free
/// loopback port, for tests of the object storage client and its users. It keeps objects in memory and does not
/// check signatures. Stop it with `stop()` (`defer` it); a server dropped without that is killed by `deinit`, so no
/// test leaves one running.
public final class MotoServer: Sendable {
    public let process: Process
    public let port: Int
    private let logPath: String

    /// `http://127.0.0.1:PORT`
    public var endpoint: String { "http://127.0.0.1:\(port)" }

    /// Starts moto and waits until it accepts connections (at most `timeout`). `environment` adds to moto's: for
    /// example `INITIAL_NO_AUTH_ACTION_COUNT=0` makes it check access keys (unknown ones get 403 InvalidAccessKeyId).
    /// `port` restarts a stopped server where its clients expect it (empty: moto keeps nothing on disk).
    public static func start(port fixedPort: Int? = nil, environment: [String: String] = [:], timeout: Duration = .seconds(30)) async throws -> MotoServer {
        let executable = try requireExecutable("moto_server")
        return try await offPool {
            var lastError = ""
            // Another program may take the free port between our probe and moto's bind: try a few ports.
            for _ in 0..<3 {
                let port = try fixedPort ?? freeLoopbackPort()
                let logPath = FileManager.default.temporaryDirectory.appendingPathComponent("moto-\(UUID().uuidString).log").path
                guard FileManager.default.createFile(atPath: logPath, contents: nil) else {
                    throw TestFailure("cannot create \(logPath)")
                }
                let process = Process()
                process.executableURL = URL(fileURLWithPath: executable)
                process.arguments = ["-H", "127.0.0.1", "-p", String(port)]
                if !environment.isEmpty {
                    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
                }
                process.standardInput = FileHandle.nullDevice
                // A file, not a pipe: moto logs every request, and a pipe nobody reads would stall it.
                let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
                process.standardOutput = log
                process.standardError = log
                try process.run()
                let server = MotoServer(process: process, port: port, logPath: logPath)
                let deadline = ContinuousClock.now + timeout
                // Ready when moto says it listens on the port: a connection alone could reach another test's server
                // that took the port first (moto then fails to bind, and this loop tries another port).
                while process.isRunning, ContinuousClock.now < deadline {
                    if server.log.contains("Running on http://127.0.0.1:\(port)"), (try? LoopbackSocket(port: port)) != nil {
                        return server
                    }
                    usleep(50_000)
                }
                lastError = server.log
                server.stop()
            }
            throw TestFailure("moto_server did not start: \(lastError.suffix(2000))")
        }
    }

    private init(process: Process, port: Int, logPath: String) {
        self.process = process
        self.port = port
        self.logPath = logPath
    }

    deinit { stop() }

    /// What moto wrote, for a failing test's message.
    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// SIGTERM, then SIGKILL if it lingers; waits for the exit. Safe to call more than once.
    public func stop() {
        if process.isRunning {
            process.terminate()
            if !waitForExit(process, within: .seconds(3)) {
                Glibc.kill(process.processIdentifier, SIGKILL)
                _ = waitForExit(process, within: .seconds(3))
            }
        }
        try? FileManager.default.removeItem(atPath: logPath)
    }
}

/// A TCP port on 127.0.0.1 that nothing listened on a moment ago (the kernel's choice for port 0). Also a port
/// where connections are refused, for tests of an unreachable server.
public func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket() failed: errno \(errno)") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
            bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
        }
    }
    guard bound else { throw TestFailure("cannot bind a loopback port: errno \(errno)") }
    return Int(UInt16(bigEndian: address.sin_port))
}
