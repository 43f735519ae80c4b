import Foundation

/// Token bucket: `rate` frames per second on average, `burst` at once.
struct TokenBucket {
    let rate: Double
    let burst: Double
    private var tokens: Double
    private var last: ContinuousClock.Instant

    init(rate: Double, burst: Int) {
        self.rate = rate
        self.burst = Double(burst)
        tokens = Double(burst)
        last = .now
    }

    /// Takes one token; when none is left returns the wait in milliseconds until one is.
    mutating func take(now: ContinuousClock.Instant = .now) -> Int? {
        let elapsed = now - last
        last = now
        let seconds = elapsed.inSeconds
        tokens = min(burst, tokens + seconds * rate)
        if tokens >= 1 {
            tokens -= 1
            return nil
        }
        return Int(((1 - tokens) / rate * 1000).rounded(.up))
    }
}

/// A connection's limits on what it sends: the rate of text frames, and how many rejected frames it may send in
/// the flood window before it is closed.
struct FrameLimits {
    private var bucket: TokenBucket
    private var rejections: [ContinuousClock.Instant] = []

    /// The flood window and threshold are read from the configuration when needed rather than copied here: every
    /// idle connection holds one of these.
    init(_ configuration: ServerConfiguration) {
        bucket = TokenBucket(rate: configuration.messagesPerSecond, burst: configuration.burst)
    }

    /// Admits one text frame; when the rate is exceeded, returns the wait in milliseconds until one would be.
    mutating func admit(at now: ContinuousClock.Instant) -> Int? {
        bucket.take(now: now)
    }

    /// Counts a rejected frame; true when there were more than `threshold` in the last `window`.
    mutating func recordRejection(window: Duration, threshold: Int, at now: ContinuousClock.Instant = .now) -> Bool {
        rejections.append(now)
        rejections.removeAll { now - $0 > window }
        return rejections.count > threshold
    }
}
