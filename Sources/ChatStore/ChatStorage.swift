/// The stores a server runs on, whichever database holds them: the seam a second database plugs into.
public struct ChatStorage: Sendable {
    public var messages: any MessageStore
    public var readMarkers: any ReadMarkerStore
    public var tokens: any TokenStore

    public init(messages: any MessageStore, readMarkers: any ReadMarkerStore, tokens: any TokenStore) {
        self.messages = messages
        self.readMarkers = readMarkers
        self.tokens = tokens
    }
}

extension ChatDatabase {
    /// This SQLite database's stores.
    public var storage: ChatStorage {
        ChatStorage(messages: messages, readMarkers: readMarkers, tokens: tokens)
    }
}
