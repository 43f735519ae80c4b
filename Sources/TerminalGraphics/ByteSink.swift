/// Append-only byte output for the renderers. Escape sequences are ASCII, so bytes are written directly (no String or
/// UTF-8 round trips), into a raw growable buffer: `Array.append` checks uniqueness on every byte, which showed up in
/// the sixel encoder's profile.
struct ByteSink: ~Copyable {
    private var base: UnsafeMutablePointer<UInt8>
    private var capacity: Int
    private(set) var count = 0

    init(capacity: Int = 256) {
        self.capacity = max(16, capacity)
        base = .allocate(capacity: self.capacity)
    }

    deinit {
        base.deallocate()
    }

    /// The bytes written, as an array (the buffer is freed).
    consuming func finish() -> [UInt8] {
        [UInt8](UnsafeBufferPointer(start: base, count: count))
    }

    private mutating func grow(_ needed: Int) {
        let next = max(capacity * 2, count + needed)
        let bigger = UnsafeMutablePointer<UInt8>.allocate(capacity: next)
        bigger.moveInitialize(from: base, count: count)
        base.deallocate()
        base = bigger
        capacity = next
    }

    @inline(__always)
    mutating func append(_ byte: UInt8) {
        if count == capacity { grow(1) }
        base[count] = byte
        count += 1
    }

    mutating func append(_ text: StaticString) {
        text.withUTF8Buffer { append(contentsOf: $0) }
    }

    mutating func append(contentsOf bytes: UnsafeBufferPointer<UInt8>) {
        if count + bytes.count > capacity { grow(bytes.count) }
        for b in bytes {
            base[count] = b
            count += 1
        }
    }

    mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { append(contentsOf: $0) }
    }

    /// `count` copies of `byte`.
    @inline(__always)
    mutating func append(_ byte: UInt8, repeated times: Int) {
        if count + times > capacity { grow(times) }
        for _ in 0..<times {
            base[count] = byte
            count += 1
        }
    }

    /// A non-negative decimal number (escape sequence parameters, run lengths).
    @inline(__always)
    mutating func appendDecimal(_ value: Int) {
        if count + 20 > capacity { grow(20) }
        let n = max(0, value)
        if n < 10 {
            base[count] = UInt8(truncatingIfNeeded: 48 + n)
            count += 1
        } else if n < 100 {
            base[count] = UInt8(truncatingIfNeeded: 48 + n / 10)
            base[count + 1] = UInt8(truncatingIfNeeded: 48 + n % 10)
            count += 2
        } else {
            var digits = 0
            var rest = n
            while rest > 0 {
                digits += 1
                rest /= 10
            }
            rest = n
            for i in stride(from: digits - 1, through: 0, by: -1) {
                base[count + i] = UInt8(truncatingIfNeeded: 48 + rest % 10)
                rest /= 10
            }
            count += digits
        }
    }

    /// `ESC [ p1 ; p2 ... final`.
    mutating func appendCSI(_ p1: Int, _ p2: Int? = nil, _ p3: Int? = nil, final: UInt8) {
        append(0x1B)
        append(0x5B)
        appendDecimal(p1)
        if let p2 {
            append(0x3B)
            appendDecimal(p2)
        }
        if let p3 {
            append(0x3B)
            appendDecimal(p3)
        }
        append(final)
    }
}
