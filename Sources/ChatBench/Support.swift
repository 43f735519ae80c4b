import ChatProtocol
import ChatStore
import Foundation
import GRDB
import Histogram
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Results gathered from the client tasks.
actor Stats {
    private(set) var acked = 0
    private(set) var delivered = 0
    private(set) var errors = 0
    private var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000)

    func addAgent(histogram other: Histogram<UInt64>, delivered: Int) {
        histogram.add(other)
        self.delivered += delivered
    }

    func addCustomer(acked: Int, errors: Int) {
        self.acked += acked
        self.errors += errors
    }

    func report() -> (acked: Int, delivered: Int, errors: Int, histogram: Histogram<UInt64>) {
        (acked, delivered, errors, histogram)
    }
}

/// A value set by one task and read by another after both finished.
final class LockedValue<T: Sendable>: Sendable {
    private let value: Mutex<T>
    init(_ value: T) { self.value = Mutex(value) }
    func set(_ newValue: T) { value.withLock { $0 = newValue } }
    func get() -> T { value.withLock { $0 } }
}

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
    func stop() {
        process.terminate()
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning, Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(pid, SIGKILL) }
        process.waitUntilExit()
    }

    /// User + system CPU seconds used so far.
    func cpuSeconds() -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // Fields after the command: state is [0]; utime and stime are fields 14 and 15 of the whole line.
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
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

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
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
    case chatServer(TokenStore)
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
    let queue: DatabaseQueue

    init(path: String) throws {
        queue = try DatabaseQueue(path: path)
        try queue.write { db in
            try db.execute(sql: "CREATE TABLE Sessions (id INTEGER PRIMARY KEY, username TEXT, session_token TEXT, role TEXT)")
        }
    }

    func make(_ user: String, role: Role) throws -> String {
        let token = TokenStore.generateToken()
        try queue.write { db in
            try db.execute(sql: "INSERT INTO Sessions (username, session_token, role) VALUES (?, ?, ?)",
                           arguments: [user, token, role.rawValue])
        }
        return token
    }
}
