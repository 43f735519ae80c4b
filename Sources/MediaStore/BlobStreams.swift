import NIOCore

/// A blob's bytes as they are read, buffer by buffer (see `BlobStorage.read`).
public typealias BlobByteStream = BlobSequence<ByteBuffer>

/// A listing, page by page (see `BlobStorage.list`).
public typealias BlobListing = BlobSequence<[StoredObject]>

/// An async sequence of whatever a storage produces, without its concrete type. Each iteration pulls one element
/// from the underlying sequence, so memory stays bounded by what that sequence buffers.
public struct BlobSequence<Element: Sendable>: AsyncSequence, Sendable {
    private let makeNext: @Sendable () -> () async throws -> Element?

    public init<Base: AsyncSequence & Sendable>(_ base: Base) where Base.Element == Element {
        makeNext = {
            var iterator = base.makeAsyncIterator()
            return { try await iterator.next() }
        }
    }

    /// A sequence of the given elements (a storage that has everything at hand, tests).
    public init(_ elements: [Element]) {
        makeNext = {
            var remaining = elements[...]
            return { remaining.popFirst() }
        }
    }

    /// A sequence whose only element is computed when asked for.
    public init(single produce: @escaping @Sendable () async throws -> Element) {
        makeNext = {
            var done = false
            return {
                guard !done else { return nil }
                done = true
                return try await produce()
            }
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(pull: makeNext())
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let pull: () async throws -> Element?

        public mutating func next() async throws -> Element? {
            try await pull()
        }
    }

    /// Every element, in order (a listing's pages, a small object's buffers).
    public func collect() async throws -> [Element] {
        var result: [Element] = []
        for try await element in self { result.append(element) }
        return result
    }
}
