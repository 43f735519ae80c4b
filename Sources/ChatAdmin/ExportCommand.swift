import ArgumentParser
import ChatProtocol
import ChatStore
import Foundation

extension ChatAdmin {
    /// `chat-admin export USER`: a customer's conversation as text or JSON, with attachment names and links.
    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a customer's conversation with attachment names and links.",
            discussion: """
                Links are the server's download URLs; fetching them needs a token that may see the conversation \
                ('Authorization: Bearer TOKEN'). Attachments an operator pruned are marked expired. Status changes \
                and assignments are listed; agents' private notes only with --include-notes. Without them, messages \
                carry the customer's own sequence numbers, so the export can be handed to the customer.
                """)

        enum Format: String, ExpressibleByArgument, CaseIterable { case txt, json }

        @Argument(help: "The customer whose conversation to export.")
        var user: String

        @Option(help: "txt (for people) or json (for scripts).")
        var format: Format = .txt

        @Option(help: "Only messages from this time on: 2026-11-01, 2026-11-01T09:30:00Z, or a duration back such as 7d.")
        var since: String?

        @Flag(name: .customLong("include-notes"), help: "Include agents' private notes (for internal use only: never give such an export to the customer).")
        var includeNotes = false

        @Option(name: .customLong("base-url"), help: "The server's public URL for attachment links (CHAT_PUBLIC_URL).")
        var baseURL: String = ProcessInfo.processInfo.environment["CHAT_PUBLIC_URL"] ?? "http://127.0.0.1:8080"

        @OptionGroup var options: DataOptions

        func run() async throws {
            var sinceMs: Int64?
            if let since {
                guard let value = parseDate(since) else {
                    throw ValidationError("--since: a date such as 2026-11-01, a time such as 2026-11-01T09:30:00Z, or a duration such as 7d")
                }
                sinceMs = value
            }
            let (user, since) = (user, sinceMs)
            let messages = try await options.withStorage { try await $0.messages.transcript(customer: user, since: since) }
            let base = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
            let transcript = Transcript(customer: user, exportedAt: isoTime(epochMilliseconds()), since: sinceMs.map(isoTime),
                                        includesNotes: includeNotes,
                                        messages: messages.compactMap { TranscriptMessage($0, base: base, includeNotes: includeNotes) })
            switch format {
            case .json:
                try printReport(transcript)
            case .txt:
                print(transcript.text, terminator: "")
            }
        }
    }
}

/// The exported conversation (the JSON format).
struct Transcript: Encodable {
    var customer: String
    var exportedAt: String
    var since: String?
    /// Whether agents' private notes are in (an internal export); without them, sequence numbers are the customer's.
    var includesNotes: Bool
    var messages: [TranscriptMessage]

    var text: String {
        let changes = messages.count { $0.event != nil }
        let count = messages.count - changes
        var out = "Conversation of \(customer): \(count) message\(count == 1 ? "" : "s")"
        if changes > 0 { out += " and \(changes) status change\(changes == 1 ? "" : "s") or assignment\(changes == 1 ? "" : "s")" }
        out += since.map { " since \($0)" } ?? ""
        out += ", exported \(exportedAt)"
        out += includesNotes ? ", WITH PRIVATE NOTES (internal)\n" : "\n"
        for message in messages {
            if message.kind == "status" || message.kind == "assignment" {
                out += "[\(message.sentAt)]\(message.seq.map { " #\($0)" } ?? "") -- \(message.text)\n"
                continue
            }
            let who = message.role == .agent ? "\(message.sender) (agent)" : message.sender
            // Continuation lines are indented so each message starts visibly at "[time]".
            let body = message.text.split(separator: "\n", omittingEmptySubsequences: false).joined(separator: "\n    ")
            let tags = (message.broadcast ? " [broadcast]" : "") + (message.kind == "note" ? " [private note]" : "")
            out += "[\(message.sentAt)] #\(message.seq ?? 0) \(who)\(tags): \(body)\n"
            for attachment in message.attachments {
                var facts = [attachment.type, formatBytes(Int64(attachment.size))]
                if let width = attachment.width, let height = attachment.height { facts.append("\(width)x\(height)") }
                out += "    attachment: \(attachment.name) (\(facts.joined(separator: ", "))) "
                out += attachment.expired ? "expired\n" : "\(attachment.url)\n"
            }
        }
        return out
    }
}

struct TranscriptMessage: Encodable {
    struct File: Encodable {
        var name: String
        var type: String
        var size: Int
        var width: Int?
        var height: Int?
        var sha256: String
        var url: String
        var expired: Bool
    }

    /// The customer's numbering, or the agents' in an export with notes; absent for status changes and assignments
    /// in an export without notes (the customer's numbering does not count them).
    var seq: Int?
    /// message, note, status or assignment.
    var kind: String
    var sentAt: String
    var sender: String
    var role: Role
    var text: String
    var broadcast: Bool
    var event: ConversationEvent?
    var attachments: [File]

    /// Nil for a note when notes are left out.
    init?(_ message: ChatMessage, base: String, includeNotes: Bool) {
        kind = message.event?.kind.rawValue ?? (message.isPrivate == true ? "note" : "message")
        if kind == "note" && !includeNotes { return nil }
        seq = includeNotes ? message.seq : message.forCustomer?.seq
        event = message.event
        sentAt = isoTime(message.sentAt)
        sender = message.sender
        role = message.senderRole
        text = message.text
        broadcast = message.broadcast
        attachments = (message.attachments ?? []).map { attachment in
            File(name: attachment.name, type: attachment.type, size: attachment.size, width: attachment.width,
                 height: attachment.height, sha256: attachment.sha256, url: "\(base)/media/\(attachment.sha256)",
                 expired: attachment.expired ?? false)
        }
    }
}

/// A format style, not a formatter per call: an export prints one per message.
private func isoTime(_ milliseconds: Int64) -> String {
    Date(timeIntervalSince1970: Double(milliseconds) / 1000).formatted(.iso8601)
}
