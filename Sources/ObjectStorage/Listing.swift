import Foundation

/// One object in a listing.
public struct ObjectSummary: Sendable, Equatable {
    public var key: String
    public var size: Int
    public var etag: String?
    public var lastModified: String?

    public init(key: String, size: Int, etag: String? = nil, lastModified: String? = nil) {
        self.key = key
        self.size = size
        self.etag = etag
        self.lastModified = lastModified
    }
}

/// One page of ListObjectsV2. `nextContinuationToken` is nil on the last page.
public struct ListPage: Sendable {
    public var objects: [ObjectSummary]
    public var nextContinuationToken: String?
}

extension S3Client {
    /// One page of the keys starting with `prefix`, in key order: pass the previous page's
    /// `nextContinuationToken` to get the next. `maxKeys` defaults to `configuration.listPageSize`.
    public func listPage(prefix: String, continuationToken: String? = nil, maxKeys: Int? = nil)
        async throws(ObjectStorageError) -> ListPage
    {
        let operation = "ListObjectsV2 \(prefix)"
        var query: [(name: String, value: String)] = [
            ("list-type", "2"), ("max-keys", "\(max(1, min(maxKeys ?? configuration.listPageSize, 1000)))"),
        ]
        if !prefix.isEmpty { query.append(("prefix", prefix)) }
        if let continuationToken { query.append(("continuation-token", continuationToken)) }
        return try await execute(operation, S3Request(method: .GET, key: nil, query: query)) { response in
            let body = try await self.successBody(response)
            guard let root = XMLNode.parse(body), root.name == "ListBucketResult" else {
                throw ObjectStorageError.invalidResponse(operation: operation, detail: "not a ListBucketResult")
            }
            let objects = try root.children("Contents").map { item -> ObjectSummary in
                guard let key = item["Key"], let size = item["Size"].flatMap({ Int($0) }) else {
                    throw ObjectStorageError.invalidResponse(operation: operation, detail: "an entry without Key or Size")
                }
                return ObjectSummary(key: key, size: size, etag: Self.unquoted(item["ETag"]), lastModified: item["LastModified"])
            }
            let truncated = root["IsTruncated"] == "true"
            let token = root["NextContinuationToken"].flatMap { $0.isEmpty ? nil : $0 }
            if truncated && token == nil {
                throw ObjectStorageError.invalidResponse(operation: operation, detail: "truncated without a continuation token")
            }
            return ListPage(objects: objects, nextContinuationToken: truncated ? token : nil)
        }
    }

    /// Every object whose key starts with `prefix`, fetched a page at a time as the sequence is iterated.
    public func list(prefix: String, pageSize: Int? = nil) -> ObjectListing {
        ObjectListing(client: self, prefix: prefix, pageSize: pageSize)
    }
}

/// The objects under a prefix, one ListObjectsV2 page requested whenever the previous one is used up.
public struct ObjectListing: AsyncSequence, Sendable {
    public typealias Element = ObjectSummary
    let client: S3Client
    let prefix: String
    let pageSize: Int?

    public struct AsyncIterator: AsyncIteratorProtocol {
        let listing: ObjectListing
        var buffered: [ObjectSummary] = []
        var token: String?
        var finished = false

        public mutating func next() async throws(ObjectStorageError) -> ObjectSummary? {
            while buffered.isEmpty {
                guard !finished else { return nil }
                let page = try await listing.client.listPage(prefix: listing.prefix, continuationToken: token,
                                                             maxKeys: listing.pageSize)
                buffered = page.objects.reversed()
                token = page.nextContinuationToken
                finished = token == nil
            }
            return buffered.popLast()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(listing: self) }
}
