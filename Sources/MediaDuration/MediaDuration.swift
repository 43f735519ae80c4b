/// Playing time of audio and video files, read from what their containers say about it (no decoding, no ffmpeg):
/// MP4/MOV `mvhd`, Matroska/WebM Segment Info, MP3 Xing/Info headers (or a constant-bitrate estimate), Ogg's last
/// granule position (Vorbis, Opus), WAV's data size and byte rate. Every read is bounds-checked against the input;
/// a file that does not say, or says something impossible, has no duration (nil), never a crash.
public enum MediaDuration {
    /// The duration in milliseconds of `data`, sniffed as `mimeType`; nil when the container does not say cheaply.
    public static func milliseconds(of data: UnsafeRawBufferPointer, mimeType: String) -> Int? {
        let reader = ByteReader(data)
        let value: Double?
        switch mimeType {
        case "video/mp4", "video/quicktime", "audio/mp4", "audio/x-m4a", "video/3gpp", "video/x-m4v":
            value = ISOBMFF.duration(reader)
        case "video/webm", "audio/webm", "video/x-matroska", "audio/x-matroska":
            value = Matroska.duration(reader)
        case "audio/mpeg", "audio/mp3":
            value = MP3.duration(reader)
        case "audio/ogg", "audio/x-vorbis+ogg", "audio/opus", "video/ogg", "application/ogg":
            value = Ogg.duration(reader)
        case "audio/x-wav", "audio/wav", "audio/vnd.wave", "audio/wave":
            value = WAV.duration(reader)
        default:
            value = nil
        }
        // Hostile headers can claim anything: only a finite duration under 100 days is believed.
        guard let value, value.isFinite, value >= 0, value < 8_640_000_000 else { return nil }
        return Int(value.rounded())
    }

    public static func milliseconds(of data: [UInt8], mimeType: String) -> Int? {
        data.withUnsafeBytes { milliseconds(of: $0, mimeType: mimeType) }
    }
}

/// Bounds-checked big- and little-endian reads; each returns nil past the end.
struct ByteReader {
    let data: UnsafeRawBufferPointer
    init(_ data: UnsafeRawBufferPointer) { self.data = data }

    var count: Int { data.count }

    func u8(_ at: Int) -> Int? { at >= 0 && at < data.count ? Int(data[at]) : nil }

    func be(_ at: Int, _ width: Int) -> UInt64? {
        guard at >= 0, width <= 8, at <= data.count - width else { return nil }
        var value: UInt64 = 0
        for i in 0..<width { value = value << 8 | UInt64(data[at + i]) }
        return value
    }

    func le(_ at: Int, _ width: Int) -> UInt64? {
        guard at >= 0, width <= 8, at <= data.count - width else { return nil }
        var value: UInt64 = 0
        for i in (0..<width).reversed() { value = value << 8 | UInt64(data[at + i]) }
        return value
    }

    func matches(_ at: Int, _ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard at >= 0, at <= data.count - bytes.count else { return false }
        return bytes.indices.allSatisfy { data[at + $0] == bytes[$0] }
    }
}

/// MP4, MOV, 3GP: the movie header box (`moov`/`mvhd`): duration / timescale. Top-level boxes are skipped by their
/// sizes, so a `moov` after the media data is found without reading that data.
enum ISOBMFF {
    static func duration(_ r: ByteReader) -> Double? {
        guard let moov = box("moov", in: r, from: 0, to: r.count), let mvhd = box("mvhd", in: r, from: moov.lowerBound, to: moov.upperBound),
              let version = r.u8(mvhd.lowerBound) else { return nil }
        let at = mvhd.lowerBound + 4 + (version == 1 ? 16 : 8)
        guard let timescale = r.be(at, 4), timescale > 0,
              let duration = version == 1 ? r.be(at + 4, 8) : r.be(at + 4, 4) else { return nil }
        // An unknown duration is all ones.
        guard duration != (version == 1 ? UInt64.max : UInt64(UInt32.max)) else { return nil }
        return Double(duration) * 1000 / Double(timescale)
    }

    /// The payload range of the first box of `type` among the boxes in `from..<to`.
    static func box(_ type: String, in r: ByteReader, from: Int, to: Int) -> Range<Int>? {
        var at = from
        while at <= to - 8, let size32 = r.be(at, 4) {
            var header = 8
            var size = Int(size32)
            if size32 == 1 {
                guard let large = r.be(at + 8, 8), large <= UInt64(Int.max) else { return nil }
                size = Int(large)
                header = 16
            } else if size32 == 0 {
                size = to - at
            }
            guard size >= header, size <= to - at else { return nil }
            if r.matches(at + 4, type) { return (at + header)..<(at + size) }
            at += size
        }
        return nil
    }
}

/// Matroska and WebM: Segment / Info / Duration (a float in TimecodeScale units, nanoseconds each by default).
enum Matroska {
    static let ebmlHeader: UInt64 = 0x1A45_DFA3, segment: UInt64 = 0x1853_8067, info: UInt64 = 0x1549_A966
    static let timecodeScale: UInt64 = 0x2A_D7B1, durationID: UInt64 = 0x4489, cluster: UInt64 = 0x1F43_B675

    static func duration(_ r: ByteReader) -> Double? {
        guard let header = element(r, at: 0), header.id == ebmlHeader, let headerEnd = header.end else { return nil }
        guard let segmentElement = element(r, at: headerEnd), segmentElement.id == segment else { return nil }
        let segmentEnd = segmentElement.end ?? r.count
        var at = segmentElement.dataStart
        // Info comes before the clusters; an element of unknown size (a live cluster) ends the search.
        while at < segmentEnd, let child = element(r, at: at) {
            if child.id == info {
                return infoDuration(r, from: child.dataStart, to: child.end ?? segmentEnd)
            }
            guard child.id != cluster, let end = child.end else { return nil }
            at = end
        }
        return nil
    }

    static func infoDuration(_ r: ByteReader, from: Int, to: Int) -> Double? {
        var scale: UInt64 = 1_000_000
        var duration: Double?
        var at = from
        while at < to, let child = element(r, at: at), let end = child.end, end <= to {
            let size = end - child.dataStart
            if child.id == timecodeScale, size >= 1, size <= 8, let value = r.be(child.dataStart, size), value > 0 {
                scale = value
            } else if child.id == durationID {
                if size == 4, let bits = r.be(child.dataStart, 4) {
                    duration = Double(Float(bitPattern: UInt32(bits)))
                } else if size == 8, let bits = r.be(child.dataStart, 8) {
                    duration = Double(bitPattern: bits)
                }
            }
            at = end
        }
        return duration.map { $0 * Double(scale) / 1_000_000 }
    }

    struct Element {
        var id: UInt64
        var dataStart: Int
        /// nil for an unknown size.
        var end: Int?
    }

    /// An EBML element header at `at`: its ID (marker bits kept, as IDs are written) and its data size.
    static func element(_ r: ByteReader, at: Int) -> Element? {
        guard let (id, idLength) = varint(r, at: at, keepMarker: true), idLength <= 4,
              let (size, sizeLength) = varint(r, at: at + idLength, keepMarker: false) else { return nil }
        let dataStart = at + idLength + sizeLength
        let unknown = size == (UInt64(1) << (7 * UInt64(sizeLength))) - 1
        if unknown { return Element(id: id, dataStart: dataStart, end: nil) }
        guard size <= UInt64(r.count - dataStart) else { return nil }
        return Element(id: id, dataStart: dataStart, end: dataStart + Int(size))
    }

    static func varint(_ r: ByteReader, at: Int, keepMarker: Bool) -> (UInt64, Int)? {
        guard let first = r.u8(at), first != 0 else { return nil }
        let length = first.leadingZeroBitCount - (Int.bitWidth - 8) + 1
        guard length <= 8, let raw = r.be(at, length) else { return nil }
        let value = keepMarker ? raw : raw & ((UInt64(1) << (7 * UInt64(length))) - 1)
        return (value, length)
    }
}

/// MP3: the first frame's Xing/Info (or VBRI) frame count, or else the constant-bitrate estimate from the size.
enum MP3 {
    static func duration(_ r: ByteReader) -> Double? {
        var start = 0
        // ID3v2 tag: "ID3", version, flags, a 28-bit syncsafe size.
        if r.matches(0, "ID3"), let b6 = r.u8(6), let b7 = r.u8(7), let b8 = r.u8(8), let b9 = r.u8(9) {
            start = 10 + (b6 << 21 | b7 << 14 | b8 << 7 | b9)
        }
        // The first frame header within a bounded search (junk between the tag and the audio is common).
        var at = start
        let limit = min(r.count - 4, start + 64 * 1024)
        while at <= limit {
            if let frame = Frame(r, at: at) {
                return duration(r, frame: frame, at: at)
            }
            at += 1
        }
        return nil
    }

    static func duration(_ r: ByteReader, frame: Frame, at: Int) -> Double? {
        // Xing/Info sits after the side information, whose size depends on version and channels.
        let side = frame.mpeg1 ? (frame.mono ? 17 : 32) : (frame.mono ? 9 : 17)
        let xing = at + 4 + side
        if r.matches(xing, "Xing") || r.matches(xing, "Info"), let flags = r.be(xing + 4, 4), flags & 1 == 1,
           let frames = r.be(xing + 8, 4), frames > 0 {
            return Double(frames) * Double(frame.samplesPerFrame) * 1000 / Double(frame.sampleRate)
        }
        if r.matches(at + 36, "VBRI"), let frames = r.be(at + 36 + 14, 4), frames > 0 {
            return Double(frames) * Double(frame.samplesPerFrame) * 1000 / Double(frame.sampleRate)
        }
        // No header: constant bitrate assumed. A trailing ID3v1 tag (128 bytes) is not audio.
        var audioBytes = r.count - at
        if r.count >= 128, r.matches(r.count - 128, "TAG") { audioBytes -= 128 }
        guard audioBytes > 0 else { return nil }
        return Double(audioBytes) * 8000 / Double(frame.bitrate)
    }

    struct Frame {
        var mpeg1: Bool
        var mono: Bool
        var bitrate: Int
        var sampleRate: Int
        var samplesPerFrame: Int

        /// A layer III frame header at `at`, or nil.
        init?(_ r: ByteReader, at: Int) {
            guard let b0 = r.u8(at), let b1 = r.u8(at + 1), let b2 = r.u8(at + 2), let b3 = r.u8(at + 3),
                  b0 == 0xFF, b1 & 0xE0 == 0xE0 else { return nil }
            let version = b1 >> 3 & 3   // 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5
            let layer = b1 >> 1 & 3     // 1: layer III
            let bitrateIndex = b2 >> 4, rateIndex = b2 >> 2 & 3
            guard version != 1, layer == 1, bitrateIndex != 0, bitrateIndex != 15, rateIndex != 3 else { return nil }
            mpeg1 = version == 3
            mono = b3 >> 6 == 3
            let kbps = mpeg1 ? [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320]
                             : [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160]
            bitrate = kbps[bitrateIndex] * 1000
            let rates = [44100, 48000, 32000][rateIndex]
            sampleRate = version == 3 ? rates : version == 2 ? rates / 2 : rates / 4
            samplesPerFrame = mpeg1 ? 1152 : 576
        }
    }
}

/// Ogg Vorbis and Opus: the last page's granule position over the sample rate (Opus: 48 kHz, less the pre-skip).
enum Ogg {
    static func duration(_ r: ByteReader) -> Double? {
        guard r.matches(0, "OggS"), let segments = r.u8(26) else { return nil }
        let packet = 27 + segments
        let rate: Double
        var preSkip: UInt64 = 0
        if r.matches(packet, "\u{1}vorbis"), let sampleRate = r.le(packet + 12, 4), sampleRate > 0 {
            rate = Double(sampleRate)
        } else if r.matches(packet, "OpusHead"), let skip = r.le(packet + 10, 2) {
            rate = 48000
            preSkip = skip
        } else {
            return nil
        }
        // The last page starts within its maximum size (about 64 KiB) of the end.
        var at = r.count - 27
        let stop = max(0, r.count - 65_307 - 27)
        while at >= stop {
            if r.matches(at, "OggS"), r.u8(at + 4) == 0, let granule = r.le(at + 6, 8), granule != UInt64.max {
                guard granule >= preSkip else { return nil }
                return Double(granule - preSkip) * 1000 / rate
            }
            at -= 1
        }
        return nil
    }
}

/// WAV: the `data` chunk's size over `fmt `'s byte rate.
enum WAV {
    static func duration(_ r: ByteReader) -> Double? {
        guard r.matches(0, "RIFF"), r.matches(8, "WAVE") else { return nil }
        var byteRate: UInt64?
        var at = 12
        while at <= r.count - 8, let size = r.le(at + 4, 4) {
            if r.matches(at, "fmt ") {
                byteRate = r.le(at + 8 + 8, 4)
            } else if r.matches(at, "data") {
                guard let byteRate, byteRate > 0 else { return nil }
                // A streaming writer may leave the size at 0 or all ones: then the rest of the file is the data.
                let dataSize = size == 0 || size == 0xFFFF_FFFF ? UInt64(r.count - at - 8) : min(size, UInt64(r.count - at - 8))
                return Double(dataSize) * 1000 / Double(byteRate)
            }
            at += 8 + Int(size) + Int(size & 1)
        }
        return nil
    }
}
