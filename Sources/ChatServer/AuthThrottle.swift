/// Slows down repeated authentication failures from one address: after `freeFailures` failures within `window`,
/// each further attempt from that address waits twice as long as the previous one, up to `maxDelay`. A success
/// clears the address.
actor AuthThrottle {
    private struct Record {
        var failures: Int
        var last: ContinuousClock.Instant
    }

    private var records: [String: Record] = [:]
    private let freeFailures: Int
    private let window: Duration
    private let baseDelay: Duration
    private let maxDelay: Duration

    init(freeFailures: Int = 3, window: Duration = .seconds(300), baseDelay: Duration = .milliseconds(250),
         maxDelay: Duration = .seconds(8)) {
        self.freeFailures = freeFailures
        self.window = window
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
    }

    /// How long an attempt from `address` must wait before its token is checked.
    func delay(for address: String) -> Duration {
        let now = ContinuousClock.now
        guard let record = records[address], now - record.last < window, record.failures >= freeFailures else {
            return .zero
        }
        let exponent = min(record.failures - freeFailures, 16)
        return min(baseDelay * (1 << exponent), maxDelay)
    }

    func recordFailure(_ address: String) {
        let now = ContinuousClock.now
        var record = records[address] ?? Record(failures: 0, last: now)
        if now - record.last >= window { record.failures = 0 }
        record.failures += 1
        record.last = now
        records[address] = record
        if records.count > 10_000 {
            records = records.filter { now - $0.value.last < window }
        }
    }

    func recordSuccess(_ address: String) {
        records[address] = nil
    }
}
