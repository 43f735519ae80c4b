/// Writes the server's most frequent frames straight into bytes: messages without attachments and acknowledgements
/// (one each per stored message) and roster entries (one per agent and changed customer, so several per message). Foundation's `JSONEncoder` builds a
/// tree of boxed values for every frame, and encoding roster updates with it stood out in profiles of the server
/// under load (BENCHMARKS.md). The output means the same as `JSONEncoder`'s (same keys and values, absent optionals
/// omitted; `/` is not escaped, which JSON allows), so clients cannot tell; tests decode it back with `JSONDecoder`.
struct FlatJSON {
    private(set) var bytes: [UInt8] = []
    private var needsComma = false

    init(capacity: Int = 256) {
        bytes.reserveCapacity(capacity)
    }

    mutating func openObject() {
        separate()
        open(UInt8(ascii: "{"))
    }

    mutating func closeObject() {
        close(UInt8(ascii: "}"))
    }

    /// `"name":[`; elements follow, then `closeArray()`.
    mutating func openArray(_ name: StaticString) {
        key(name)
        open(UInt8(ascii: "["))
    }

    mutating func closeArray() {
        close(UInt8(ascii: "]"))
    }

    private mutating func open(_ bracket: UInt8) {
        bytes.append(bracket)
        needsComma = false
    }

    private mutating func close(_ bracket: UInt8) {
        bytes.append(bracket)
        needsComma = true
    }

    /// `"name":` before a nested object.
    mutating func key(_ name: StaticString) {
        separate()
        bytes.append(UInt8(ascii: "\""))
        name.withUTF8Buffer { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: ":")])
        needsComma = false
    }

    mutating func field(_ name: StaticString, _ value: String) {
        key(name)
        appendString(value)
        needsComma = true
    }

    mutating func field(_ name: StaticString, _ value: Int64) {
        key(name)
        appendInteger(value)
        needsComma = true
    }

    mutating func field(_ name: StaticString, _ value: Int) {
        field(name, Int64(value))
    }

    mutating func field(_ name: StaticString, _ value: Bool) {
        key(name)
        let literal: StaticString = value ? "true" : "false"
        literal.withUTF8Buffer { bytes.append(contentsOf: $0) }
        needsComma = true
    }

    private mutating func separate() {
        if needsComma { bytes.append(UInt8(ascii: ",")) }
    }

    /// A JSON string: `"` and `\` escaped, control characters as `\n`-style or `\u00XX` escapes, everything else as
    /// its UTF-8 bytes (a Swift string is always valid Unicode).
    private mutating func appendString(_ value: String) {
        bytes.append(UInt8(ascii: "\""))
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x0A: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0x08: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
            case 0x0C: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
            case 0x00..<0x20:
                bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
                                          Self.hexDigit(byte >> 4), Self.hexDigit(byte & 0x0F)])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    private static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }

    private mutating func appendInteger(_ value: Int64) {
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        // Digits of the magnitude written lowest first, then put in order in place: no array per number on the
        // hot path (Int64.min's magnitude fits in UInt64).
        let start = bytes.count
        var magnitude = value.magnitude
        repeat {
            bytes.append(UInt8(ascii: "0") + UInt8(magnitude % 10))
            magnitude /= 10
        } while magnitude > 0
        bytes[start...].reverse()
    }
}

extension FlatJSON {
    /// `{"type":"ack",...}` with `Ack`'s fields in declaration order.
    static func ack(_ ack: Ack) -> [UInt8] {
        var json = FlatJSON(capacity: 160)
        json.openObject()
        json.field("type", "ack")
        json.field("clientId", ack.clientId)
        json.field("id", ack.id)
        json.field("conversation", ack.conversation)
        json.field("seq", ack.seq)
        json.field("sentAt", ack.sentAt)
        json.field("duplicate", ack.duplicate)
        json.closeObject()
        return json.bytes
    }

    /// `{"type":"message",...}` for a message without attachments (with them, the nested attachment objects are
    /// left to `JSONEncoder`: nil here).
    static func message(_ message: ChatMessage) -> [UInt8]? {
        guard message.attachments == nil, message.event == nil else { return nil }
        var json = FlatJSON(capacity: 192 + message.text.utf8.count)
        json.openObject()
        json.field("type", "message")
        json.field("id", message.id)
        json.field("conversation", message.conversation)
        json.field("seq", message.seq)
        json.field("sender", message.sender)
        json.field("senderRole", message.senderRole.rawValue)
        json.field("clientId", message.clientId)
        json.field("text", message.text)
        json.field("sentAt", message.sentAt)
        json.field("broadcast", message.broadcast)
        if message.isPrivate == true { json.field("private", true) }
        json.closeObject()
        return json.bytes
    }

    /// `{"type":"roster"|"rosterUpdate","customers":[...]}`.
    static func roster(type: String, _ entries: [RosterEntry]) -> [UInt8] {
        var json = FlatJSON(capacity: 64 + entries.count * 192)
        json.openObject()
        json.field("type", type)
        json.openArray("customers")
        for entry in entries {
            json.openObject()
            json.field("customer", entry.customer)
            json.field("online", entry.online)
            json.field("lastSeq", entry.lastSeq)
            if let last = entry.lastMessage {
                json.key("lastMessage")
                json.openObject()
                json.field("sender", last.sender)
                json.field("text", last.text)
                json.field("sentAt", last.sentAt)
                json.field("seq", last.seq)
                json.closeObject()
            }
            json.field("unread", entry.unread)
            json.field("readSeq", entry.readSeq)
            json.field("status", entry.status.rawValue)
            if let until = entry.until { json.field("until", until) }
            if let assignee = entry.assignee { json.field("assignee", assignee) }
            json.closeObject()
        }
        json.closeArray()
        json.closeObject()
        return json.bytes
    }
}
