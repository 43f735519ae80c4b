import ChatStore
import Foundation

/// `chat-bench --search-db chat.sqlite --search-words words.txt`: query times of the SQLite search store on an
/// existing database (Benchmarks/search.sh fills one with a million messages). Each query is one or two words drawn
/// from the file (one word a line) with a fixed seed, run through `SQLiteMessageSearch` as an agent searching every
/// conversation and as a customer searching their own, one query at a time.
struct SearchBenchmark {
    var path: String
    var wordsPath: String
    var queries: Int

    func run() async throws {
        guard let text = try? String(contentsOfFile: wordsPath, encoding: .utf8) else { throw BenchError("cannot read \(wordsPath)") }
        let words = text.split(whereSeparator: \.isNewline).map(String.init).filter { !$0.isEmpty }
        guard !words.isEmpty else { throw BenchError("\(wordsPath) has no words") }
        let database = try ChatDatabase(path: path, durability: .normal)
        let search = SQLiteMessageSearch(database: database)
        let customers = try await database.messages.customers()
        guard !customers.isEmpty else { throw BenchError("\(path) has no conversations") }
        print("\(try await database.messages.messageCount()) messages in \(customers.count) conversations, \(words.count) query words")
        var generator = QueryGenerator()
        for (label, isAgent) in [("agent, every conversation", true), ("customer, own conversation", false)] {
            var times: [Double] = []
            var found = 0
            for index in 0..<(queries + queries / 10) {
                let count = Int.random(in: 1...2, using: &generator)
                let query = (0..<count).map { _ in words[Int.random(in: 0..<words.count, using: &generator)] }
                let audience: SearchAudience = isAgent ? .agent : .customer(customers[Int.random(in: 0..<customers.count, using: &generator)])
                let started = ContinuousClock.now
                let results = try await search.search(SearchQuery(words: query, audience: audience, limit: 20))
                let elapsed = ContinuousClock.now - started
                // The first tenth warms the page cache and the statement cache.
                if index >= queries / 10 {
                    times.append(Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1000)
                    found += results.count
                }
            }
            times.sort()
            func percentile(_ p: Double) -> String { String(format: "%.2f", times[min(times.count - 1, Int(Double(times.count) * p))]) }
            print("\(label): \(times.count) queries of 1-2 words, p50 \(percentile(0.5)) ms, p95 \(percentile(0.95)) ms, "
                  + "p99 \(percentile(0.99)) ms, max \(percentile(1)) ms, \(String(format: "%.1f", Double(found) / Double(times.count))) results per query")
        }
    }
}

/// xorshift64: seeded, so every run asks the same queries.
struct QueryGenerator: RandomNumberGenerator {
    var state: UInt64 = 0x2545_F491_4F6C_DD1D

    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
}

/// Drops the trigger that indexes new messages, with the `sqlite3` program (the stores have no such operation, and
/// should not): the server then stores messages as it did before search existed.
func dropSearchTrigger(_ path: String) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["sqlite3", path, "DROP TRIGGER messages_fts_insert"]
    try process.run()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { throw BenchError("sqlite3 could not drop the search trigger of \(path)") }
    print("search index trigger dropped: messages are stored without indexing")
}
