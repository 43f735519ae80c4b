/// Terminal answers to the capability probe, parsed from raw input bytes. Pure: no terminal needed.
///
/// The probe is one batch, sent at once (`TerminalProbe.request`):
/// - `CSI 16 t` → `CSI 6 ; height ; width t`: cell size in pixels
/// - `CSI 14 t` → `CSI 4 ; height ; width t`: text area size in pixels
/// - `CSI ? 1 ; 1 ; 0 S` (XTSMGRAPHICS, read colour registers) → `CSI ? 1 ; 0 ; registers S` (status 0 = success)
/// - `OSC 4 ; 0 ; ? ; ... ; 15 ; ? ST` (the first 16 palette colours) → `OSC 4 ; n ; rgb:RRRR/GGGG/BBBB ST` each
/// - `CSI c` (primary device attributes, DA1) → `CSI ? class ; attributes... c`; attribute 4 means sixel.
/// Every terminal answers DA1, and answers in order, so DA1 comes last and its answer marks the end: anything
/// not answered before it will not be answered.
public struct ProbeAnswers: Sendable, Equatable {
    public var cellSize: PixelSize?
    public var textAreaSize: PixelSize?
    public var colorRegisters: Int?
    /// Palette colours the terminal reported (OSC 4), by index.
    public var palette: [Int: RGB] = [:]
    /// DA1 parameters, the class first (e.g. 63 or 1), then the attributes. nil: no answer (yet).
    public var deviceAttributes: [Int]?
    /// Input that was not part of an answer (keys typed during the probe), in order, for the caller to use.
    public var otherInput: [UInt8] = []

    public init(cellSize: PixelSize? = nil, textAreaSize: PixelSize? = nil, colorRegisters: Int? = nil,
                deviceAttributes: [Int]? = nil, otherInput: [UInt8] = []) {
        self.cellSize = cellSize
        self.textAreaSize = textAreaSize
        self.colorRegisters = colorRegisters
        self.deviceAttributes = deviceAttributes
        self.otherInput = otherInput
    }

    /// The DA1 answer arrived: nothing more will come.
    public var isComplete: Bool { deviceAttributes != nil }

    /// Sixel graphics announced: a 4 among the DA1 attributes (after the class, since VT132's class is 4).
    public var announcesSixel: Bool {
        guard let da = deviceAttributes, da.count > 1 else { return false }
        return da.dropFirst().contains(4)
    }

    /// Parses everything in `bytes`. A sequence cut off at the end is left out (and not counted as other input).
    public static func parse(_ bytes: [UInt8]) -> ProbeAnswers {
        var answers = ProbeAnswers()
        var i = 0
        let n = bytes.count
        while i < n {
            // CSI is ESC [ or the 8-bit 0x9B.
            let start = i
            var p: Int
            if bytes[i] == 0x1B, i + 1 < n, bytes[i + 1] == 0x5D {
                // OSC: up to BEL or ST; a palette report is kept, any other is dropped (never taken as keys).
                guard let (body, end) = oscBody(bytes, from: i + 2) else { break }  // cut off: more to come
                answers.recordColor(body)
                i = end
                continue
            }
            if bytes[i] == 0x1B, i + 1 < n, bytes[i + 1] == 0x5B {
                p = i + 2
            } else if bytes[i] == 0x1B, i + 1 == n {
                break  // a lone ESC at the end: probably the start of an answer still on its way
            } else if bytes[i] == 0x9B {
                p = i + 1
            } else {
                answers.otherInput.append(bytes[i])
                i += 1
                continue
            }
            // Parameter bytes 0x30...0x3F, intermediates 0x20...0x2F, final 0x40...0x7E.
            let paramStart = p
            while p < n, (0x30...0x3F).contains(bytes[p]) { p += 1 }
            let paramEnd = p
            while p < n, (0x20...0x2F).contains(bytes[p]) { p += 1 }
            guard p < n else { break }  // cut off
            let final = bytes[p]
            guard (0x40...0x7E).contains(final) else {
                // Not a well-formed sequence: keep the bytes as input and resynchronise after the introducer.
                answers.otherInput.append(contentsOf: bytes[start..<(paramStart)])
                i = paramStart
                continue
            }
            i = p + 1
            let (prefix, params) = parameters(bytes[paramStart..<paramEnd])
            let intermediates = paramEnd < p
            if intermediates || !answers.record(prefix: prefix, params: params, final: final) {
                answers.otherInput.append(contentsOf: bytes[start..<i])
            }
        }
        return answers
    }

    /// The bytes of an OSC starting at `start` (after `ESC ]`) and the index after its terminator (BEL or `ESC \`);
    /// nil when the terminator has not arrived.
    private static func oscBody(_ bytes: [UInt8], from start: Int) -> (ArraySlice<UInt8>, Int)? {
        var p = start
        while p < bytes.count {
            if bytes[p] == 0x07 { return (bytes[start..<p], p + 1) }
            if bytes[p] == 0x1B, p + 1 < bytes.count {
                // ST; or an ESC that starts something else and so ends a malformed OSC.
                return bytes[p + 1] == 0x5C ? (bytes[start..<p], p + 2) : (bytes[start..<p], p)
            }
            if bytes[p] == 0x1B { return nil }
            p += 1
        }
        return nil
    }

    /// `4;n;rgb:R/G/B` with 1 to 4 hex digits per channel (scaled to 8 bits), as xterm reports a palette entry.
    private mutating func recordColor(_ body: ArraySlice<UInt8>) {
        let fields = String(decoding: body, as: UTF8.self).split(separator: ";", omittingEmptySubsequences: false)
        guard fields.count == 3, fields[0] == "4", let index = Int(fields[1]), (0...255).contains(index),
              fields[2].hasPrefix("rgb:") else { return }
        let channels = fields[2].dropFirst(4).split(separator: "/")
        guard channels.count == 3 else { return }
        var values: [UInt8] = []
        for channel in channels {
            guard (1...4).contains(channel.count), let value = Int(channel, radix: 16) else { return }
            let maximum = (1 << (4 * channel.count)) - 1
            values.append(UInt8((value * 255 + maximum / 2) / maximum))
        }
        palette[index] = RGB(values[0], values[1], values[2])
    }

    /// Stores a recognised answer; false for any other sequence.
    private mutating func record(prefix: UInt8?, params: [Int?], final: UInt8) -> Bool {
        switch (prefix, final) {
        case (nil, 0x74):  // 't': window reports
            guard params.count == 3, let kind = params[0], let h = params[1], let w = params[2] else { return false }
            if kind == 6 {
                cellSize = PixelSize(width: w, height: h)
            } else if kind == 4 {
                textAreaSize = PixelSize(width: w, height: h)
            } else {
                return false
            }
            return true
        case (0x3F, 0x53):  // '?' ... 'S': XTSMGRAPHICS
            guard params.count >= 3, params[0] == 1 else { return false }
            if params[1] == 0, let value = params[2] { colorRegisters = value }
            return true  // a failure status is still the answer: no registers to learn
        case (0x3F, 0x63):  // '?' ... 'c': DA1
            deviceAttributes = params.map { $0 ?? 0 }
            return true
        default:
            return false
        }
    }

    /// The private-marker prefix (`?`, `>`, `<`, `=`) and the `;`-separated numbers (nil when empty or too long).
    private static func parameters(_ bytes: ArraySlice<UInt8>) -> (UInt8?, [Int?]) {
        var prefix: UInt8?
        var body = bytes
        if let first = body.first, (0x3C...0x3F).contains(first) {
            prefix = first
            body = body.dropFirst()
        }
        var params: [Int?] = []
        var value: Int?
        var valid = true
        for b in body {
            switch b {
            case 0x30...0x39:
                let next = (value ?? 0) * 10 + Int(b - 0x30)
                if next > 1_000_000 { valid = false } else { value = next }
            case 0x3B:
                params.append(valid ? value : nil)
                value = nil
                valid = true
            default:
                valid = false  // ':' sub-parameters or stray markers: not a number we use
            }
        }
        params.append(valid ? value : nil)
        return (prefix, params)
    }
}

public struct PixelSize: Sendable, Hashable {
    public var width: Int
    public var height: Int

    public init(width: Int, height: Int) {
        self.width = width
        self.height = height
    }
}
