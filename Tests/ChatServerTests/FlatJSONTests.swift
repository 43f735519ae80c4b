import ChatProtocol
import Foundation
import Testing

/// The hand-written encoding of acks and roster frames decodes to exactly what was encoded, whatever the strings hold.
@Suite("Flat JSON frames")
struct FlatJSONTests {
    /// Strings that exercise every escaping rule: all control characters, quotes, backslashes, slashes, non-ASCII
    /// (CJK, combining marks, emoji outside the BMP), the JavaScript line separators, and the empty string.
    static let awkward: [String] = {
        var strings = ["", "plain", "quote \" and backslash \\ and slash /", "tab\tnew\nline\r\u{08}\u{0C}",
                       "注文 ⚠︎ é 👩‍💻 🚀", "\u{2028}\u{2029}", "\\u0041 is not A", "ends with backslash \\"]
        strings.append(String((0..<32).map { Character(Unicode.Scalar(UInt8($0))) }))
        strings.append(String(repeating: "\u{7F}\u{80}\u{FFFF}\u{10FFFF}", count: 3))
        return strings
    }()

    private func roundTrip(_ frame: ServerFrame) throws -> ServerFrame {
        let codec = FrameCodec()
        let data = try codec.encode(frame)
        #expect(String(data: data, encoding: .utf8) != nil, "valid UTF-8")
        #expect((try? JSONSerialization.jsonObject(with: data)) != nil, "valid JSON: \(String(decoding: data, as: UTF8.self))")
        return try codec.decodeServerFrame(data)
    }

    @Test("acks: every field survives, for awkward client ids and extreme numbers")
    func acks() throws {
        for (index, text) in Self.awkward.enumerated() {
            for number in [Int64.min, -1, 0, 7, Int64.max] {
                let ack = Ack(clientId: text, id: number, conversation: "alice\(index)", seq: Int(truncatingIfNeeded: number),
                              sentAt: number, duplicate: index.isMultiple(of: 2))
                #expect(try roundTrip(.ack(ack)) == .ack(ack))
            }
        }
    }

    @Test("messages: every field survives for awkward texts and names, both roles, broadcast or not")
    func messages() throws {
        for (index, text) in Self.awkward.enumerated() {
            for role in Role.allCases {
                let message = ChatMessage(id: Int64(index) << 40, conversation: "alice", seq: index + 1, sender: text,
                                          senderRole: role, clientId: text + "-id", text: text,
                                          sentAt: 1_764_000_000_000 + Int64(index), broadcast: role == .agent)
                #expect(try roundTrip(.message(message)) == .message(message))
            }
        }
    }

    @Test("roster and rosterUpdate: entries with and without a last message, empty and long lists")
    func rosters() throws {
        var entries: [RosterEntry] = []
        for (index, text) in Self.awkward.enumerated() {
            let preview = index.isMultiple(of: 3) ? nil : MessagePreview(sender: text, text: text, sentAt: Int64(index) * 1_000_000_007, seq: index)
            entries.append(RosterEntry(customer: "c\(index)", online: index.isMultiple(of: 2), lastSeq: index * 10,
                                       lastMessage: preview, unread: index, readSeq: max(0, index - 1)))
        }
        for list in [[], Array(entries.prefix(1)), entries] {
            #expect(try roundTrip(.roster(list)) == .roster(list))
            #expect(try roundTrip(.rosterUpdate(list)) == .rosterUpdate(list))
        }
    }
}
