import ChatProtocol
import ChatStore
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Histogram
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `chat-server` as a child process on a free port, with its CPU time and memory read from /proc.
final class ServerProcess: Sendable {
    let pid: Int32
    let port: Int
    private let process: Process

    /// Starts `executable arguments...`; the server must log `port=N` on stderr once it listens.
    init(executable: String, arguments: [String]) throws {
        let binary = executable
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardError = pipe
        try process.run()
        var output = ""
        var found: Int?
        let deadline = Date().addingTimeInterval(20)
        while found == nil, Date() < deadline {
            let data = pipe.fileHandleForReading.availableData
            if data.isEmpty { break }
            output += String(decoding: data, as: UTF8.self)
            if let range = output.range(of: #"port=(\d+)"#, options: .regularExpression) {
                found = Int(output[range].dropFirst(5))
            }
        }
        guard let found else {
            process.terminate()
            throw BenchError("chat-server did not start (\(binary)): \(output)")
        }
        self.process = process
        pid = process.processIdentifier
        port = found
        // Keep draining stderr: a server that logs a lot would otherwise block on a full pipe and stall the run.
        let handle = pipe.fileHandleForReading
        Thread.detachNewThread {
            while !handle.availableData.isEmpty {}
        }
    }

    /// SIGTERM (SIGINT may be ignored: shells start background jobs with it ignored), then SIGKILL after 10 s.
    /// Waits by polling with a limit, not `waitUntilExit`, which on Linux spins without one.
    func stop() {
        process.terminate()
        if !exited(within: 10) {
            kill(pid, SIGKILL)
            _ = exited(within: 5)
        }
    }

    private func exited(within seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning {
            guard Date() < deadline else { return false }
            usleep(20_000)
        }
        return true
    }

    /// User + system CPU seconds used so far.
    func cpuSeconds() -> Double {
        processCPUSeconds(pid: pid)
    }

    func residentBytes() -> Int { statusValue("VmRSS") }
    func peakResidentBytes() -> Int { statusValue("VmHWM") }

    private func statusValue(_ key: String) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix(key + ":") {
            return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
        }
        return 0
    }
}

/// CPU seconds (user and system) process `pid` has used; 0 when it is gone.
func processCPUSeconds(pid: Int32) -> Double {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")") else { return 0 }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    // Fields after the command: state is [0]; utime and stime are fields 14 and 15 of the whole line.
    guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

/// CPU seconds used so far by every process named `command` (PostgreSQL's server and its backends), by pid: a
/// process that exits in between is not counted, which is why the pool's long-lived connections are what we measure.
func cpuSecondsByProcess(named command: String) -> [Int32: Double] {
    var result: [Int32: Double] = [:]
    for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
        guard let pid = Int32(entry),
              let name = try? String(contentsOfFile: "/proc/\(entry)/comm", encoding: .utf8),
              name.trimmingCharacters(in: .whitespacesAndNewlines) == command else { continue }
        result[pid] = processCPUSeconds(pid: pid)
    }
    return result
}

/// The commit figures of a node's `/metrics` (Prometheus text): how many batches it committed, with how many
/// messages, and how long the store took. Read before and after a run, their difference says where time went.
struct CommitFigures {
    var commits = 0.0
    var messages = 0.0
    var seconds = 0.0

    static func read(port: Int) async -> CommitFigures {
        guard let url = URL(string: "http://127.0.0.1:\(port)/metrics"),
              let (data, _) = try? await URLSession.shared.data(from: url) else { return CommitFigures() }
        var figures = CommitFigures()
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            let parts = line.split(separator: " ")
            guard parts.count == 2, let value = Double(parts[1]) else { continue }
            switch parts[0] {
            case "chat_commit_seconds_count": figures.commits = value
            case "chat_commit_seconds_sum": figures.seconds = value
            case "chat_commit_batch_size_sum": figures.messages = value
            default: break
            }
        }
        return figures
    }

    static func - (after: CommitFigures, before: CommitFigures) -> CommitFigures {
        CommitFigures(commits: after.commits - before.commits, messages: after.messages - before.messages,
                      seconds: after.seconds - before.seconds)
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// User + system CPU seconds this process (the load generator) used so far.
func ownCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// Lifts the open-file limit to its hard maximum: thousands of sockets need it (the server inherits it).
func raiseFileLimit() {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
    limit.rlim_cur = limit.rlim_max
    setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
}


/// Where the bench's users get their tokens: chat-server's token store, or the peer's plain Sessions table.
enum TokenIssuer {
    case chatServer(any TokenStore)
    case peer(PeerTokens)

    func make(_ user: String, role: Role) async throws -> String {
        switch self {
        case .chatServer(let store): try await store.create(username: user, role: role).token
        case .peer(let peer): try peer.make(user, role: role)
        }
    }
}

/// The original design's `Sessions(id, username, session_token)` table (plus a role), tokens in clear as it had them.
struct PeerTokens {
    let file: LegacySessionsFile

    init(path: String) throws {
        file = try LegacySessionsFile(creatingAt: path)
    }

    func make(_ user: String, role: Role) throws -> String {
        let token = Tokens.generate()
        try file.add(username: user, token: token, role: role)
        return token
    }
}

/// Finds the few fields the bench reads in the server's frames by scanning their UTF-8 bytes, without decoding the
/// JSON: the generator reads tens of thousands of frames a second on the machine whose server it measures.
enum FrameScan {
    static let messageType = Array(#""type":"message""#.utf8)
    static let ackType = Array(#""type":"ack""#.utf8)
    static let errorType = Array(#""type":"error""#.utf8)
    static let syncedType = Array(#""type":"synced""#.utf8)
    static let textMarker = Array(#""text":"t="#.utf8)
    static let clientIdMarker = Array(#""clientId":""#.utf8)

    static func contains(_ needle: [UInt8], in bytes: UnsafeRawBufferPointer) -> Bool {
        end(of: needle, in: bytes) != nil
    }

    /// The decimal number right after `marker`.
    static func number(after marker: [UInt8], in bytes: UnsafeRawBufferPointer) -> Int64? {
        guard let start = end(of: marker, in: bytes) else { return nil }
        return digits(bytes, from: start)
    }

    /// The number after the last `-` of the string value that starts after `marker` (ends at the next quote).
    static func lastNumber(inValueAfter marker: [UInt8], in bytes: UnsafeRawBufferPointer) -> Int64? {
        guard var index = end(of: marker, in: bytes) else { return nil }
        var lastDash: Int?
        while index < bytes.count, bytes[index] != UInt8(ascii: "\"") {
            if bytes[index] == UInt8(ascii: "-") { lastDash = index }
            index += 1
        }
        return lastDash.flatMap { digits(bytes, from: $0 + 1) }
    }

    /// Written out rather than the standard library's `firstRange(of:)`, which was slow enough here to make the load
    /// generator, not the server, the bottleneck (BENCHMARKS.md).
    private static func end(of needle: [UInt8], in bytes: UnsafeRawBufferPointer) -> Int? {
        guard let first = needle.first, needle.count <= bytes.count else { return nil }
        var index = 0
        while index <= bytes.count - needle.count {
            if bytes[index] == first {
                var matched = 1
                while matched < needle.count, bytes[index + matched] == needle[matched] { matched += 1 }
                if matched == needle.count { return index + needle.count }
            }
            index += 1
        }
        return nil
    }

    private static func digits(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int64? {
        var value: Int64 = 0
        var index = start
        while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
            value = value &* 10 &+ Int64(bytes[index] - UInt8(ascii: "0"))
            index += 1
        }
        return index > start ? value : nil
    }
}
