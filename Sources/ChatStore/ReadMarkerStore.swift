/// A read marker as stored, with what the roster needs to count unread messages.
public struct StoredReadMarker: Sendable, Equatable {
    public var user: String
    public var customer: String
    public var seq: Int
    /// Customer messages with seq <= `seq`: unread = conversation's customer messages - this.
    public var customerMessagesRead: Int
    /// `seq` in the customer's numbering (their last message at or before it), for receipts the customer gets.
    public var customerSeq: Int

    public init(user: String, customer: String, seq: Int, customerMessagesRead: Int, customerSeq: Int? = nil) {
        self.customerSeq = customerSeq ?? seq
        self.user = user
        self.customer = customer
        self.seq = seq
        self.customerMessagesRead = customerMessagesRead
    }
}

/// How far each user has read each conversation.
public protocol ReadMarkerStore: Sendable {
    /// Every stored read marker with the number of customer messages it covers.
    func readMarkers() async throws(StoreError) -> [StoredReadMarker]

    /// Moves `user`'s read marker in `customer`'s conversation forward to `seq` (never back, never past the
    /// conversation's last message). Returns the marker now stored, or nil when the conversation does not exist.
    /// Markers are stored in the agents' numbering; a customer's `seq` (`audience` `.customer`) is in theirs.
    func markRead(user: String, customer: String, seq: Int, audience: Audience) async throws(StoreError) -> StoredReadMarker?
}
