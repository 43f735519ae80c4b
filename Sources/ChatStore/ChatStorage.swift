/// The stores a server runs on, whichever database holds them: the seam a second database plugs into.
public struct ChatStorage: Sendable {
    public var messages: any MessageStore
    public var readMarkers: any ReadMarkerStore
    public var tokens: any TokenStore
    public var catalog: any MediaCatalog
    public var canned: any CannedReplyStore
    public var search: any MessageSearch

    public init(messages: any MessageStore, readMarkers: any ReadMarkerStore, tokens: any TokenStore, catalog: any MediaCatalog,
                canned: any CannedReplyStore, search: any MessageSearch) {
        self.canned = canned
        self.search = search
        self.messages = messages
        self.readMarkers = readMarkers
        self.tokens = tokens
        self.catalog = catalog
    }
}

extension ChatDatabase {
    /// This SQLite database's stores.
    public var storage: ChatStorage {
        ChatStorage(messages: messages, readMarkers: readMarkers, tokens: tokens, catalog: SQLiteMediaCatalog(database: self),
                    canned: SQLiteCannedReplyStore(database: self), search: SQLiteMessageSearch(database: self))
    }
}
