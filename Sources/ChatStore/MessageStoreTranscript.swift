import ChatProtocol

extension MessageStore {
    /// The whole conversation of `customer` in seq order, with attachments, from `since` (epoch ms) on when given.
    /// Read through the history pages the clients use, so a long conversation never sits in one huge query, and
    /// starting at the first message sent at or after `since`, so older pages are not read only to be dropped.
    /// A customer who never wrote has an empty transcript; an agent or an unknown name throws `notFound`.
    public func transcript(customer: String, since: Int64? = nil, pageSize: Int = 500) async throws(StoreError) -> [ChatMessage] {
        let start = try await transcriptStart(customer: customer, since: since)
        guard start.conversationExists else {
            if start.role == .customer { return [] }
            throw .notFound(start.role == nil ? "customer \(customer)" : "customer \(customer) (\(customer) is an agent)")
        }
        guard let firstSeq = start.firstSeq else { return [] }
        var messages: [ChatMessage] = []
        var after = firstSeq - 1
        while true {
            let page = try await history(customer: customer, after: after, limit: pageSize)
            messages += page.messages.filter { message in since.map { message.sentAt >= $0 } ?? true }
            guard page.hasMore, let last = page.messages.last else { break }
            after = last.seq
        }
        return messages
    }
}
