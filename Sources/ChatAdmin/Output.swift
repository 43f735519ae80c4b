import Foundation
import Synchronization

// Human-friendly output shared by every chat-admin command: tables, sizes, times, durations, JSON, progress.
// Data goes to stdout (tables or --json); messages and progress go to stderr so pipes stay clean.

/// "30d", "12h", "90m", "45s" to seconds.
func parseDuration(_ text: String) -> Double? {
    Duration(typed: text)?.inSeconds
}

/// "10GiB", "500MiB", "64KiB", "1.5GB", "1000" (bytes) to bytes. Binary (KiB, MiB, GiB, TiB) and decimal (KB, MB,
/// GB, TB) units; no unit or "B" means bytes.
func parseSize(_ text: String) -> Int64? {
    let units: [(String, Double)] = [
        ("TiB", 1_099_511_627_776), ("GiB", 1_073_741_824), ("MiB", 1_048_576), ("KiB", 1_024),
        ("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3), ("kB", 1e3), ("B", 1),
    ]
    let trimmed = text.trimmingCharacters(in: .whitespaces)
    for (suffix, factor) in units where trimmed.hasSuffix(suffix) {
        guard let value = Double(trimmed.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)), value >= 0,
              value * factor < 9e18 else { return nil }
        return Int64(value * factor)
    }
    guard let value = Int64(trimmed), value >= 0 else { return nil }
    return value
}

/// Bytes for people: "812 B", "3.4 KiB", "12.0 MiB", "1.25 GiB".
func formatBytes(_ bytes: Int64) -> String {
    let units = ["KiB", "MiB", "GiB", "TiB"]
    guard bytes >= 1024 else { return "\(bytes) B" }
    var value = Double(bytes) / 1024
    var unit = 0
    while value >= 1024, unit < units.count - 1 {
        value /= 1024
        unit += 1
    }
    return String(format: value >= 100 ? "%.0f %@" : (value >= 10 ? "%.1f %@" : "%.2f %@"), value, units[unit])
}

/// "2026-11-29 14:05Z". With gmtime_r rather than a DateFormatter per call: listings of 100,000 blobs print this
/// per row, and creating formatters made them take seconds.
func formatTime(_ milliseconds: Int64) -> String {
    var seconds = time_t(milliseconds / 1000)
    var parts = tm()
    guard gmtime_r(&seconds, &parts) != nil else { return "?" }
    func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
    return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday)) \(two(parts.tm_hour)):\(two(parts.tm_min))Z"
}

/// Columns separated by two spaces; columns listed in `rightAligned` (numbers, sizes) are aligned right.
func table(header: [String], rows: [[String]], rightAligned: Set<Int> = []) -> String {
    let all = [header] + rows
    let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
    return all.map { row in
        row.enumerated().map { column, cell in
            let pad = String(repeating: " ", count: max(0, widths[column] - cell.count))
            if rightAligned.contains(column) { return pad + cell }
            return column == row.count - 1 ? cell : cell + pad
        }.joined(separator: "  ")
    }.joined(separator: "\n")
}

/// Writes a report as JSON on stdout (slashes left alone: reports hold MIME types and URLs).
func printReport<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

func printJSON(_ value: Any) {
    guard let data = try? JSONSerialization.data(withJSONObject: value, options: [.prettyPrinted, .sortedKeys]) else { return }
    print(String(decoding: data, as: UTF8.self))
}

/// A line on stderr for the operator (never part of the data on stdout).
func note(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// A progress bar on stderr, drawn only when stderr is a terminal and at most ten times a second, so scripts and
/// logs get no control characters. Owned by the one task doing the long work.
final class ProgressBar {
    private let title: String
    private let total: Int64
    private let enabled: Bool
    private var lastDraw: UInt64 = 0

    init(_ title: String, total: Int64) {
        self.title = title
        self.total = max(total, 1)
        self.enabled = isatty(STDERR_FILENO) == 1
    }

    func update(_ done: Int64, detail: String = "") {
        guard enabled else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        guard now - lastDraw > 100_000_000 || done >= total else { return }
        lastDraw = now
        let fraction = min(1, Double(done) / Double(total))
        let width = 30
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
        FileHandle.standardError.write(Data("\r\u{1B}[2K\(title) \(bar) \(Int(fraction * 100))% \(detail)".utf8))
    }

    /// Clears the bar's line.
    func finish() {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8))
    }
}

/// A `ProgressBar` that work on other threads can update (verify hashes on every core).
final class ProgressReporter: Sendable {
    private let title: String
    private let bar = Mutex<ProgressBar?>(nil)

    init(_ title: String) { self.title = title }

    func update(_ done: Int64, total: Int64) {
        bar.withLock { bar in
            if bar == nil { bar = ProgressBar(title, total: total) }
            bar?.update(done)
        }
    }

    func finish() { bar.withLock { $0?.finish() } }
}

/// `--since` values to epoch milliseconds: a date ("2026-11-01", UTC midnight), a date and time in ISO 8601
/// ("2026-11-01T09:30:00Z", "2026-11-01T09:30:00+01:00"), or a duration back from now ("7d", "12h").
func parseDate(_ text: String, now: Date = Date()) -> Int64? {
    if let seconds = parseDuration(text) { return Int64((now.timeIntervalSince1970 - seconds) * 1000) }
    let withTime = ISO8601DateFormatter()
    if let date = withTime.date(from: text) { return Int64(date.timeIntervalSince1970 * 1000) }
    let dateOnly = ISO8601DateFormatter()
    dateOnly.formatOptions = [.withFullDate]
    if let date = dateOnly.date(from: text) { return Int64(date.timeIntervalSince1970 * 1000) }
    return nil
}
