/// `Duration` as plain numbers, for timestamps, rate limits, metrics and reports.
extension Duration {
    public var inNanoseconds: Int64 {
        components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000
    }

    public var inMilliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }

    public var inSeconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}

extension Duration {
    /// "90d", "12h", "30m", "45s", "1.5h": a positive amount with one unit, as operators and agents type them.
    public init?(typed text: String) {
        guard let unit = text.last, let value = Double(text.dropLast()), value > 0, value.isFinite else { return nil }
        let seconds: Double
        switch unit {
        case "d": seconds = value * 86_400
        case "h": seconds = value * 3_600
        case "m": seconds = value * 60
        case "s": seconds = value
        default: return nil
        }
        guard seconds < 1e12 else { return nil }
        self = .milliseconds(Int64(seconds * 1000))
    }
}
