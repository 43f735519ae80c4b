import ChatProtocol
import Foundation

/// Which conversations the roster shows (agents' `/view`).
public enum RosterView: String, Sendable, CaseIterable {
    case all
    case mine
    case unassigned
}

/// Agents' workflow commands: status, assignment, notes and the roster view.
extension ChatState {
    static let workflowCommands = ["/resolve", "/reopen", "/snooze", "/take", "/assign", "/note", "/view", "/canned"]

    /// Runs `name` if it is a workflow command; nil otherwise.
    mutating func workflowCommand(_ name: String, _ argument: String) -> Outcome? {
        guard Self.workflowCommands.contains(name) else { return nil }
        var outcome = Outcome()
        guard isAgent else {
            addNotice(.error, "\(name) is for agents")
            return outcome
        }
        if name == "/view" {
            guard let view = argument.isEmpty ? RosterView.all : RosterView(rawValue: argument) else {
                addNotice(.error, "usage: /view mine|unassigned|all")
                return outcome
            }
            rosterView = view
            addNotice(.info, "showing \(view == .all ? "every conversation" : view == .mine ? "conversations assigned to you" : "unassigned conversations")")
            return outcome
        }
        if name == "/canned" && argument.isEmpty {
            if cannedReplies.isEmpty { addNotice(.info, "no canned replies yet (operators add them with chat-admin canned add)") }
            for reply in cannedReplies { addNotice(.info, "\(reply.name): \(reply.text.prefix(80))") }
            return outcome
        }
        guard let conversation = current else {
            addNotice(.error, "no conversation open: /switch NAME first (/who lists customers)")
            return outcome
        }
        switch name {
        case "/canned":
            guard let reply = cannedReplies.first(where: { $0.name == argument }) else {
                addNotice(.error, "no canned reply named \(argument) (/canned lists them; Tab completes names)")
                break
            }
            outcome.merge(sendMessage(reply.expanded(customer: conversation, agent: user)))
        case "/note":
            guard !argument.isEmpty else { addNotice(.error, "usage: /note TEXT (seen by agents only)"); break }
            let note = PendingMessage(clientId: makeId(), text: argument, conversation: conversation, broadcast: false,
                                      attachments: nil, createdAt: now() + clockOffset, note: true)
            pending.append(note)
            if isOnline { outcome.frames.append(frame(for: note)) }
        case "/resolve":
            outcome.frames += workflowRequest(.setStatus(SetStatus(requestId: nextRequestId(), conversation: conversation, status: .resolved)))
        case "/reopen":
            outcome.frames += workflowRequest(.setStatus(SetStatus(requestId: nextRequestId(), conversation: conversation, status: .open)))
        case "/snooze":
            var until: Int64?
            if !argument.isEmpty {
                guard let duration = Duration(typed: argument) else {
                    addNotice(.error, "usage: /snooze [DURATION] such as 30m, 2h or 1d (none: until the customer writes)")
                    break
                }
                until = now() + clockOffset + duration.inMilliseconds
            }
            outcome.frames += workflowRequest(.setStatus(SetStatus(requestId: nextRequestId(), conversation: conversation,
                                                                   status: .snoozed, until: until)))
        case "/take":
            outcome.frames += workflowRequest(.assign(Assign(requestId: nextRequestId(), conversation: conversation, agent: user)))
        case "/assign":
            guard !argument.isEmpty else { addNotice(.error, "usage: /assign NAME (or /assign none)"); break }
            let agent = argument == "none" ? nil : argument
            outcome.frames += workflowRequest(.assign(Assign(requestId: nextRequestId(), conversation: conversation, agent: agent)))
        default:
            break
        }
        return outcome
    }

    private mutating func nextRequestId() -> String {
        requestCounter += 1
        return "w\(requestCounter)"
    }

    /// Sent now, or refused while offline: a status change typed offline and sent minutes later could undo what
    /// another agent did meanwhile.
    private mutating func workflowRequest(_ frame: ClientFrame) -> [ClientFrame] {
        guard isOnline else {
            addNotice(.error, "offline: not sent; try again once online")
            return []
        }
        return [frame]
    }

    /// Whether the roster view shows `entry`.
    func isShown(_ entry: RosterEntry) -> Bool {
        switch rosterView {
        case .all: true
        case .mine: entry.assignee == user
        case .unassigned: entry.assignee == nil
        }
    }

    /// "resolved, sam" for the status line: the open conversation's status and assignee.
    public func workflowSummary(of conversation: String) -> String? {
        guard isAgent, let entry = roster[conversation] else { return nil }
        var text = entry.status.rawValue
        if entry.status == .snoozed { text += entry.until.map { " until \(Self.clock($0))" } ?? " until they write" }
        text += entry.assignee.map { ", \($0 == user ? "yours" : $0)" } ?? ", unassigned"
        return text
    }

    /// The answer to a status change or assignment: the timeline entry comes as a message; only a resend says more.
    mutating func conversationUpdated(_ update: ConversationUpdated) {
        if update.duplicate { addNotice(.info, "\(update.conversation): that change was already made", conversation: update.conversation) }
    }
}
