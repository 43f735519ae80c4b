/// Plans a PNG with only the chunks needed to show it: critical chunks, colour and transparency, physical size and
/// APNG animation. Every other ancillary chunk goes (`eXIf`, text, `tIME`, private and provenance chunks), as do
/// bytes after IEND. Kept chunks are copied whole, CRCs included.
enum PNGCleaner {
    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    static let critical: Set<String> = ["IHDR", "PLTE", "IDAT", "IEND"]
    static let kept: Set<String> = [
        "tRNS", "gAMA", "cHRM", "sRGB", "iCCP", "cICP", "mDCv", "cLLi", "sBIT", "bKGD", "hIST", "pHYs", "sPLT",
        "acTL", "fcTL", "fdAT",
    ]

    static func plan(_ data: UnsafeRawBufferPointer) throws(MetadataCleaningError) -> CleaningPlan {
        let n = data.count
        guard n >= 8, data.starts(with: signature) else { throw .notFormat(expected: "PNG") }
        var plan = CleaningPlan(inputSize: n)
        try plan.copy(0..<8)
        var position = 8
        var first = true
        while position < n {
            guard n - position >= 12 else { throw .truncated(what: "PNG chunk header", offset: position) }
            let length = Int(data[position]) << 24 | Int(data[position + 1]) << 16 | Int(data[position + 2]) << 8
                | Int(data[position + 3])
            // The format caps lengths at 2^31 - 1; and the chunk must fit what is left.
            guard length <= 0x7FFF_FFFF else { throw .malformed(what: "PNG chunk length \(length)", offset: position) }
            guard length <= n - position - 12 else { throw .truncated(what: "PNG chunk", offset: position) }
            let typeBytes = UnsafeRawBufferPointer(rebasing: data[(position + 4)..<(position + 8)])
            guard typeBytes.allSatisfy({ (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) }) else {
                throw .malformed(what: "PNG chunk type", offset: position + 4)
            }
            let type = String(decoding: typeBytes, as: UTF8.self)
            guard !first || type == "IHDR" else { throw .malformed(what: "PNG without IHDR first", offset: position) }
            first = false
            let end = position + 12 + length
            if critical.contains(type) || kept.contains(type) {
                try plan.copy(position..<end)
            } else if typeBytes[0] & 0x20 == 0 {
                // Bit 5 of the first letter clear: critical, and a decoder that does not know it cannot show the
                // picture; neither keeping nor dropping it is known to be right.
                throw .unknownCriticalChunk(type)
            } else {
                switch type {
                case "eXIf": plan.note(.pngExif)
                case "tEXt", "zTXt", "iTXt": plan.note(.pngText)
                case "tIME": plan.note(.pngTime)
                default: plan.note(.pngOtherChunk)
                }
            }
            position = end
            if type == "IEND" {
                if position < n { plan.note(.trailingData) }
                return plan
            }
        }
        // No IEND: the file ends at a chunk boundary; it stays as incomplete as it was.
        return plan
    }
}
