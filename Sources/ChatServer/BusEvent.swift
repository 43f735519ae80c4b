import ChatProtocol
import ChatStore
import Foundation
import NIOCore

/// An event as it travels between nodes: small JSON, frames as their text; a NOTIFY carries an array of them.
struct BusEvent: Codable {
    var node: String
    var kind: String
    var conversation: String?
    var frame: String?
    var origin: UInt64?
    var user: String?
    var role: Role?
    var online: Bool?
    var seq: Int?
    var customerMessagesRead: Int?
    var customerSeq: Int?

    init(node: String, presence change: PresenceChange) {
        self.node = change.node
        kind = "presence"
        user = change.user
        role = change.role
        online = change.online
    }

    init?(node: String, event: DeliveryEvent) {
        self.node = node
        switch event {
        case .typing(let conversation, let frame, let origin):
            kind = "typing"
            self.conversation = conversation
            self.frame = frame.buffer.getString(at: frame.buffer.readerIndex, length: frame.buffer.readableBytes)
            self.origin = origin
        case .read(let marker, let role, let origin):
            kind = "read"
            conversation = marker.customer
            user = marker.user
            self.role = role
            seq = marker.seq
            customerMessagesRead = marker.customerMessagesRead
            customerSeq = marker.customerSeq
            self.origin = origin
        default:
            return nil
        }
    }

    /// The event to deliver on node `here`: the origin connection counts only on the node it belongs to.
    func event(here: String) -> DeliveryEvent? {
        let origin = node == here ? self.origin : nil
        switch kind {
        case "typing":
            guard let conversation, let frame else { return nil }
            return .typing(conversation: conversation, frame: EncodedFrame(buffer: ByteBuffer(string: frame)), origin: origin)
        case "read":
            guard let conversation, let user, let role, let seq, let customerMessagesRead else { return nil }
            return .read(StoredReadMarker(user: user, customer: conversation, seq: seq, customerMessagesRead: customerMessagesRead,
                                          customerSeq: customerSeq),
                         role: role, origin: origin)
        case "presence":
            guard let user, let role, let online else { return nil }
            return .presence(PresenceChange(user: user, role: role, online: online, node: node))
        default:
            return nil
        }
    }

    /// `events` as JSON arrays of at most `limit` bytes each (NOTIFY payloads are limited), in order; an event too
    /// big on its own is left out.
    static func payloads(_ events: [BusEvent], limit: Int) -> [String] {
        let encoder = JSONEncoder()
        var payloads: [String] = []
        var current = ""
        var bytes = 0
        for event in events {
            guard let data = try? encoder.encode(event), data.count + 2 <= limit else { continue }
            if bytes > 0, bytes + 1 + data.count + 1 > limit {
                payloads.append(current + "]")
                (current, bytes) = ("", 0)
            }
            current += (bytes == 0 ? "[" : ",") + String(decoding: data, as: UTF8.self)
            bytes += 1 + data.count
        }
        if bytes > 0 { payloads.append(current + "]") }
        return payloads
    }

    /// The events of one payload: an array, or a single event as a node of the previous version sends.
    static func decode(_ payload: String) -> [BusEvent] {
        let data = Data(payload.utf8)
        if let events = try? JSONDecoder().decode([BusEvent].self, from: data) { return events }
        return (try? JSONDecoder().decode(BusEvent.self, from: data)).map { [$0] } ?? []
    }
}
