import Foundation
#if canImport(Glibc)
import Glibc
#endif

// Helpers shared by the test targets for running external programs (reference tools such as ImageMagick, djpeg,
// openssl, sixel2png, tmux, and the package's own executables).
//
// Swift's cooperative thread pool has as many threads as cores (two on the CI machine). A test that waits for a
// child process on one of them holds it for the whole run of the child, and two such tests stall every other test's
// tasks, servers included. So every wait for a child process happens on a thread of its own.

/// Runs blocking work on a thread of its own and waits for it without holding a cooperative thread.
public func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

/// What a program did: its exit status and everything it wrote.
public struct ToolResult: Sendable {
    public var status: Int32
    public var stdout: [UInt8]
    public var stderr: String

    /// Standard output as text.
    public var output: String { String(decoding: stdout, as: UTF8.self) }
}

/// Runs `executable` with `arguments` to its end (standard input empty) and returns its status and output. Output
/// goes through files, so a child that writes much to both streams cannot block on a full pipe. A child still
/// running after `timeout` is killed and reported, so a hung tool fails its test instead of hanging the run.
/// `environment` adds to (or replaces in) the test's own environment.
public func runTool(_ executable: String, _ arguments: [String], timeout: Duration = .seconds(120),
                    currentDirectory: String? = nil, environment: [String: String] = [:]) async throws -> ToolResult {
    try await offPool {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("tool-\(UUID().uuidString)")
        let outURL = base.appendingPathExtension("out"), errURL = base.appendingPathExtension("err")
        for url in [outURL, errURL] {
            guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
                throw TestFailure("cannot create \(url.path)")
            }
        }
        defer {
            try? FileManager.default.removeItem(at: outURL)
            try? FileManager.default.removeItem(at: errURL)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let currentDirectory { process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = try FileHandle(forWritingTo: errURL)
        try process.run()
        guard waitForExit(process, within: timeout) else {
            process.terminate()
            _ = waitForExit(process, within: .seconds(5))
            throw TestFailure("\(executable) \(arguments.joined(separator: " ")) did not finish within \(timeout)")
        }
        let stdout = (try? Data(contentsOf: outURL)).map { [UInt8]($0) } ?? []
        let stderr = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
        return ToolResult(status: process.terminationStatus, stdout: stdout, stderr: stderr)
    }
}

/// Waits, sleeping, until `process` has exited or `limit` has passed; false when it is still running. Not
/// `waitUntilExit`: on Linux that spins on an empty run loop, with no limit, and in a full test run it once spun for
/// good after an exit went unnoticed, holding one of the two cooperative threads and hanging the suite.
public func waitForExit(_ process: Process, within limit: Duration) -> Bool {
    let deadline = ContinuousClock.now + limit
    while process.isRunning {
        guard ContinuousClock.now < deadline else { return false }
        usleep(10_000)
    }
    return true
}

/// The path of the program `name` on `PATH` (and the usual system directories), or nil when it is not installed.
public func findExecutable(_ name: String) -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
    for directory in path.split(separator: ":").map(String.init) + ["/usr/bin", "/usr/local/bin", "/bin"] {
        let candidate = directory + "/" + name
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return nil
}

/// Like `findExecutable`, but a missing program is an error that says `.ci/run` installs it.
public func requireExecutable(_ name: String) throws -> String {
    guard let path = findExecutable(name) else { throw TestFailure("\(name) is not installed (see .ci/run)") }
    return path
}

/// Like `runTool`, but a non-zero exit is an error carrying the program's stderr; returns standard output.
@discardableResult
public func runToolChecked(_ executable: String, _ arguments: [String]) async throws -> [UInt8] {
    let result = try await runTool(executable, arguments)
    guard result.status == 0 else {
        throw TestFailure("\(executable) \(arguments.joined(separator: " ")) exited \(result.status): \(result.stderr)")
    }
    return result.stdout
}

/// A test helper's failure, with what went wrong.
public struct TestFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The path of one of the package's executables, built beside the test bundle (`swift build` builds them).
public func builtExecutable(_ name: String) throws -> String {
    var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for _ in 0..<4 {
        let candidate = directory.appendingPathComponent(name).path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        directory.deleteLastPathComponent()
    }
    // Where `swift build` puts them when the test bundle runs from elsewhere.
    let fallback = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../.build/debug/\(name)").standardized.path
    guard FileManager.default.isExecutableFile(atPath: fallback) else {
        throw TestFailure("\(name) executable not found next to the test bundle; run 'swift build' first")
    }
    return fallback
}

/// `chat-server` as a child process, so a test can kill it with SIGKILL and start it again on the same files and
/// port. Blocking: call it through `offPool`.
public struct ServerProcess: Sendable {
    public let process: Process
    public let port: Int

    /// Starts `binary` on `port` (0: a free one, read back from its log) with the data in `directory`, plus
    /// `arguments` (and `environment` added to the test's); waits until it listens.
    public init(binary: String, directory: String, port: Int = 0, arguments: [String] = [],
                environment: [String: String] = [:]) throws {
        var lastError = ""
        // The port of a killed server may take a moment to be free again.
        for _ in 0..<20 {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = ["--port", String(port), "--data-dir", directory, "--log-level", "notice"] + arguments
            if !environment.isEmpty {
                process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
            }
            let pipe = Pipe()
            process.standardError = pipe
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            // The server logs where it listens: "... port=NNNNN ...".
            var output = ""
            let handle = pipe.fileHandleForReading
            let deadline = Date().addingTimeInterval(20)
            var found: Int?
            while found == nil, Date() < deadline {
                let data = handle.availableData
                if data.isEmpty { break }
                output += String(decoding: data, as: UTF8.self)
                if let range = output.range(of: #"port=(\d+)"#, options: .regularExpression) {
                    found = Int(output[range].dropFirst(5))
                }
            }
            if let found {
                self.process = process
                self.port = found
                return
            }
            if process.isRunning { process.terminate() }
            _ = waitForExit(process, within: .seconds(5))
            lastError = output
            Thread.sleep(forTimeInterval: 0.25)
        }
        throw TestFailure("chat-server did not start: \(lastError)")
    }

    /// SIGKILL: no shutdown, as in a crash. The killed server's port is free as soon as it is dead.
    public func kill() {
        guard process.isRunning else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        _ = waitForExit(process, within: .seconds(5))
    }
}
