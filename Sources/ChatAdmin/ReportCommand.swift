import ArgumentParser
import ChatProtocol
import ChatStore
import Foundation

extension ChatAdmin {
    /// `chat-admin report`: how fast the team answers and resolves, per agent and overall.
    struct Report: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Conversations handled, messages sent, first response and resolution times per agent.",
            discussion: """
                A customer's first message after their conversation was resolved (or ever) starts a wait; the first \
                agent message after it is the first response, and resolving the conversation ends it (resolution \
                time). Times are p50 and p90 (nearest rank) of what ended in the period. Broadcasts, notes and \
                automatic assignments are not counted as answers.
                """)

        @Option(help: "The period: a duration back such as 7d or 12h, or a date such as 2026-11-01.")
        var since: String = "7d"

        @OptionGroup var options: DataOptions

        func run() async throws {
            guard let since = parseDate(since) else {
                throw ValidationError("--since: a duration such as 7d, or a date such as 2026-11-01")
            }
            let report = try await options.withStorage { storage in
                do { return try await SupportReport.make(since: since, from: storage.messages) } catch { throw AdminFailure("\(error)") }
            }
            if options.json {
                try printReport(report)
                return
            }
            let rows = (report.agents + [report.overall]).map { line in
                [line.agent, String(line.conversations), String(line.messages), duration(line.firstResponse.p50Ms),
                 duration(line.firstResponse.p90Ms), duration(line.resolution.p50Ms), duration(line.resolution.p90Ms)]
            }
            note("since \(formatTime(since))")
            print(table(header: ["AGENT", "CONVERSATIONS", "MESSAGES", "FIRST RESPONSE p50", "p90", "RESOLUTION p50", "p90"],
                        rows: rows, rightAligned: [1, 2, 3, 4, 5, 6]))
        }

        /// "45s", "12m", "3.5h", "2.1d", or "-" when nothing was measured.
        private func duration(_ milliseconds: Int64?) -> String {
            guard let milliseconds else { return "-" }
            let seconds = Double(milliseconds) / 1000
            switch seconds {
            case ..<60: return "\(Int(seconds.rounded()))s"
            case ..<3600: return "\(Int((seconds / 60).rounded()))m"
            case ..<86_400: return String(format: "%.1fh", seconds / 3600)
            default: return String(format: "%.1fd", seconds / 86_400)
            }
        }
    }
}
