import ArgumentParser
import ChatProtocol
import ChatStore
import Foundation

extension ChatAdmin {
    /// `chat-admin canned add|list|remove`: the canned replies agents insert with `/canned NAME`.
    struct Canned: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "canned",
            abstract: "Add, list and remove the canned replies agents insert by name.",
            discussion: """
                In the text, {customer} and {agent} become the conversation's customer and the agent sending it. \
                Running servers pick up changes within a few seconds and send them to every agent.
                """,
            subcommands: [Add.self, List.self, Remove.self]
        )
    }
}

extension ChatAdmin.Canned {
    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a canned reply, or replace the one of that name.")

        @Argument(help: "Name: 1-64 letters, digits, '-' or '_'.")
        var name: String

        @Argument(help: "The text (quote it). {customer} and {agent} are filled in when it is used.")
        var text: String

        @OptionGroup var options: DataOptions

        func validate() throws {
            guard CannedReply.isValidName(name) else { throw ValidationError("the name must be 1-64 letters, digits, '-' or '_'") }
            guard !text.allSatisfy(\.isWhitespace) else { throw ValidationError("the text is empty") }
            guard text.utf8.count <= CannedReply.maxTextBytes else {
                throw ValidationError("the text is \(text.utf8.count) bytes; at most \(CannedReply.maxTextBytes)")
            }
        }

        func run() async throws {
            let reply = CannedReply(name: name, text: text)
            let replaced = try await options.withStorage { try await $0.canned.save(reply) }
            if options.json {
                try printReport(["name": name, "action": replaced ? "replaced" : "added"])
            } else {
                note("canned reply \(name) \(replaced ? "replaced" : "added")")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the canned replies.")

        @OptionGroup var options: DataOptions

        func run() async throws {
            let replies = try await options.withStorage { try await $0.canned.cannedReplies() }
            if options.json {
                try printReport(replies)
            } else if replies.isEmpty {
                note("no canned replies (chat-admin canned add NAME TEXT)")
            } else {
                print(table(header: ["NAME", "TEXT"], rows: replies.map { [$0.name, $0.text.replacingOccurrences(of: "\n", with: " ")] }))
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a canned reply.")

        @Argument(help: "The name of the reply to remove.")
        var name: String

        @OptionGroup var options: DataOptions

        func run() async throws {
            let name = name
            guard try await options.withStorage({ try await $0.canned.removeCannedReply(named: name) }) else {
                throw AdminFailure("no canned reply named \(name) (chat-admin canned list shows them)")
            }
            if options.json { try printReport(["name": name, "action": "removed"]) } else { note("canned reply \(name) removed") }
        }
    }
}
