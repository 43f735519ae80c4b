import Foundation
@testable import MediaDuration
import TestProcesses
import Testing

/// Containers written byte by byte here (and a WAV by Python's `wave` module): each says a known duration.
enum Containers {
    static func be(_ value: UInt64, _ width: Int) -> [UInt8] { (0..<width).reversed().map { UInt8(value >> (8 * UInt64($0)) & 0xFF) } }
    static func le(_ value: UInt64, _ width: Int) -> [UInt8] { (0..<width).map { UInt8(value >> (8 * UInt64($0)) & 0xFF) } }

    static func box(_ type: String, _ payload: [UInt8]) -> [UInt8] { be(UInt64(8 + payload.count), 4) + Array(type.utf8) + payload }

    /// ftyp, a large mdat, then moov with an mvhd (version 0 or 1) saying `duration` / `timescale`.
    static func mp4(timescale: UInt64, duration: UInt64, version: UInt8 = 0, brand: String = "isom") -> [UInt8] {
        let times = version == 1 ? [UInt8](repeating: 0, count: 16) + be(timescale, 4) + be(duration, 8)
                                 : [UInt8](repeating: 0, count: 8) + be(timescale, 4) + be(duration, 4)
        let mvhd = box("mvhd", [version, 0, 0, 0] + times + [UInt8](repeating: 0, count: 80))
        return box("ftyp", Array(brand.utf8) + [0, 0, 2, 0] + Array("isomiso2".utf8)) + box("mdat", [UInt8](repeating: 7, count: 5000))
            + box("moov", mvhd + box("trak", []))
    }

    static func ebml(_ id: UInt64, _ payload: [UInt8], unknownSize: Bool = false) -> [UInt8] {
        let idBytes = be(id, id > 0xFFFFFF ? 4 : id > 0xFFFF ? 3 : id > 0xFF ? 2 : 1)
        let size = unknownSize ? [0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF] : [0x01] + be(UInt64(payload.count), 7)
        return idBytes + size + payload
    }

    /// EBML header, a Segment of unknown size (as live recorders write), SeekHead, Info, a Cluster.
    static func webm(durationTicks: Double, timecodeScale: UInt64 = 1_000_000, floatBits: Int = 64) -> [UInt8] {
        let header = ebml(0x1A45DFA3, ebml(0x4282, Array("webm".utf8)))
        let duration = floatBits == 64 ? be(durationTicks.bitPattern, 8) : be(UInt64(Float(durationTicks).bitPattern), 4)
        let info = ebml(0x1549A966, ebml(0x2AD7B1, be(timecodeScale, 4)) + ebml(0x4D80, Array("test".utf8)) + ebml(0x4489, duration))
        let cluster = ebml(0x1F43B675, [UInt8](repeating: 0, count: 100))
        return header + ebml(0x18538067, ebml(0x114D9B74, [0xEC, 0x81, 0x00]) + info + cluster, unknownSize: true)
    }

    /// An ID3v2 tag then `frames` MPEG-1 layer III frames at 128 kbps, 44.1 kHz, stereo; with `xing`, the first
    /// frame is a Xing header saying `xingFrames`.
    static func mp3(frames: Int, xingFrames: UInt64? = nil) -> [UInt8] {
        let frameLength = 144 * 128_000 / 44_100 // 417
        let header: [UInt8] = [0xFF, 0xFB, 0x90, 0x00]
        var audio: [UInt8] = []
        if let xingFrames {
            var first = header + [UInt8](repeating: 0, count: 32) + Array("Xing".utf8) + be(1, 4) + be(xingFrames, 4)
            first += [UInt8](repeating: 0, count: frameLength - first.count)
            audio += first
        }
        for _ in 0..<frames { audio += header + [UInt8](repeating: 0x55, count: frameLength - 4) }
        let tagBody = [UInt8](repeating: 0, count: 100)
        return Array("ID3".utf8) + [3, 0, 0, 0, 0, 0, UInt8(tagBody.count)] + tagBody + audio
    }

    static func oggPage(granule: UInt64, sequence: UInt32, packet: [UInt8], last: Bool = false) -> [UInt8] {
        Array("OggS".utf8) + [0, last ? 4 : 0] + le(granule, 8) + le(0x1234, 4) + le(UInt64(sequence), 4) + [0, 0, 0, 0]
            + [1, UInt8(packet.count)] + packet
    }

    static func oggVorbis(sampleRate: UInt64, lastGranule: UInt64) -> [UInt8] {
        let id: [UInt8] = [1] + Array("vorbis".utf8) + le(0, 4) + [2] + le(sampleRate, 4) + [UInt8](repeating: 0, count: 13)
        return oggPage(granule: 0, sequence: 0, packet: id) + oggPage(granule: lastGranule / 2, sequence: 1, packet: [1, 2, 3])
            + oggPage(granule: lastGranule, sequence: 2, packet: [4, 5, 6], last: true)
    }

    static func oggOpus(preSkip: UInt64, lastGranule: UInt64) -> [UInt8] {
        let head: [UInt8] = Array("OpusHead".utf8) + [1, 2] + le(preSkip, 2) + le(44_100, 4) + [0, 0, 0]
        return oggPage(granule: 0, sequence: 0, packet: head) + oggPage(granule: lastGranule, sequence: 1, packet: [9], last: true)
    }
}

@Suite struct DurationTests {
    @Test func mp4AndMovHeaders() {
        #expect(MediaDuration.milliseconds(of: Containers.mp4(timescale: 600, duration: 7_530), mimeType: "video/mp4") == 12_550)
        #expect(MediaDuration.milliseconds(of: Containers.mp4(timescale: 90_000, duration: 270_000_000_000, version: 1),
                                           mimeType: "video/quicktime") == 3_000_000_000)
        // Hostile: a box larger than the file, a zero timescale, an unknown duration, a truncated moov.
        var huge = Containers.mp4(timescale: 600, duration: 600)
        huge[3] = 0xFF; huge[2] = 0xFF
        #expect(MediaDuration.milliseconds(of: huge, mimeType: "video/mp4") == nil)
        #expect(MediaDuration.milliseconds(of: Containers.mp4(timescale: 0, duration: 600), mimeType: "video/mp4") == nil)
        #expect(MediaDuration.milliseconds(of: Containers.mp4(timescale: 600, duration: 0xFFFF_FFFF), mimeType: "video/mp4") == nil)
        let whole = Containers.mp4(timescale: 600, duration: 600)
        for cut in stride(from: 0, to: whole.count, by: 7) {
            #expect(MediaDuration.milliseconds(of: Array(whole[..<cut]), mimeType: "video/mp4") == nil)
        }
    }

    @Test func webmSegmentInfo() {
        #expect(MediaDuration.milliseconds(of: Containers.webm(durationTicks: 4_321.0), mimeType: "video/webm") == 4_321)
        #expect(MediaDuration.milliseconds(of: Containers.webm(durationTicks: 250.0, timecodeScale: 10_000_000, floatBits: 32),
                                           mimeType: "audio/webm") == 2_500)
        let whole = Containers.webm(durationTicks: 1000)
        for cut in 0..<whole.count { _ = MediaDuration.milliseconds(of: Array(whole[..<cut]), mimeType: "video/webm") }
        // A NaN or infinite duration is not believed.
        #expect(MediaDuration.milliseconds(of: Containers.webm(durationTicks: .infinity), mimeType: "video/webm") == nil)
        #expect(MediaDuration.milliseconds(of: Containers.webm(durationTicks: .nan), mimeType: "video/webm") == nil)
    }

    @Test func mp3XingAndConstantBitrate() {
        // 1152 samples per frame at 44.1 kHz: 100 frames are 2612 ms.
        #expect(MediaDuration.milliseconds(of: Containers.mp3(frames: 3, xingFrames: 100), mimeType: "audio/mpeg") == 2_612)
        // No Xing: 100 frames of 417 bytes at 128 kbps.
        #expect(MediaDuration.milliseconds(of: Containers.mp3(frames: 100), mimeType: "audio/mpeg") == 2_606)
        #expect(MediaDuration.milliseconds(of: Array("ID3".utf8) + [3, 0, 0, 0x7F, 0x7F, 0x7F, 0x7F], mimeType: "audio/mpeg") == nil)
    }

    @Test func oggVorbisAndOpus() {
        #expect(MediaDuration.milliseconds(of: Containers.oggVorbis(sampleRate: 44_100, lastGranule: 441_000), mimeType: "audio/ogg") == 10_000)
        #expect(MediaDuration.milliseconds(of: Containers.oggOpus(preSkip: 312, lastGranule: 96_312), mimeType: "audio/ogg") == 2_000)
        #expect(MediaDuration.milliseconds(of: Containers.oggOpus(preSkip: 312, lastGranule: 10), mimeType: "audio/ogg") == nil)
    }

    @Test func wavWrittenByPythonsWaveModule() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("wav-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/tone.wav"
        // 1.5 s of 16-bit stereo at 22050 Hz.
        let script = """
            import wave
            w = wave.open('\(path)', 'wb'); w.setnchannels(2); w.setsampwidth(2); w.setframerate(22050)
            w.writeframes(bytes(4 * 33075)); w.close()
            """
        _ = try await runToolChecked("/usr/bin/python3", ["-c", script])
        let wav = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(MediaDuration.milliseconds(of: wav, mimeType: "audio/x-wav") == 1_500)
        for cut in stride(from: 0, to: 60, by: 1) { _ = MediaDuration.milliseconds(of: Array(wav[..<cut]), mimeType: "audio/x-wav") }
        #expect(MediaDuration.milliseconds(of: Array(wav[..<44]) + [1, 2, 3, 4], mimeType: "audio/x-wav") == 0)
    }

    @Test func otherTypesHaveNone() {
        #expect(MediaDuration.milliseconds(of: Array("hello".utf8), mimeType: "text/plain") == nil)
        #expect(MediaDuration.milliseconds(of: [], mimeType: "video/mp4") == nil)
    }
}
