import ChatProtocol
import ChatServerFixture
import Foundation
import TestProcesses
import Testing

/// Audio and video uploads through a real server: the attachment card has the sniffed type, size and duration.
@Suite("Audio and video cards", .stopsServers)
struct MediaCardTests {
    @Test("a WAV written by Python's wave module and an MP4 with its movie header after the media data say their duration")
    func durations() async throws {
        let work = MediaServer.makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: work) }
        let wavPath = work + "/voice.wav"
        // 2.25 s of 16-bit mono at 8 kHz.
        let script = """
            import wave
            w = wave.open('\(wavPath)', 'wb'); w.setnchannels(1); w.setsampwidth(2); w.setframerate(8000)
            w.writeframes(bytes(2 * 18000)); w.close()
            """
        _ = try await runToolChecked("/usr/bin/python3", ["-c", script])
        let wav = try Data(contentsOf: URL(fileURLWithPath: wavPath))

        func be32(_ value: Int) -> [UInt8] { [UInt8(value >> 24 & 0xFF), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)] }
        func box(_ type: String, _ payload: [UInt8]) -> [UInt8] { be32(8 + payload.count) + Array(type.utf8) + payload }
        // 90 s at a timescale of 1000, the moov written last as a camera does.
        let mvhd = box("mvhd", [0, 0, 0, 0] + [UInt8](repeating: 0, count: 8) + be32(1000) + be32(90_000) + [UInt8](repeating: 0, count: 80))
        let mp4 = box("ftyp", Array("isom".utf8) + [0, 0, 2, 0] + Array("isomiso2".utf8)) + box("mdat", [UInt8](repeating: 3, count: 4096))
            + box("moov", mvhd)

        let server = try await MediaServer.start()
        let token = try await server.makeToken("alice", role: .customer)
        let (alice, _) = try await server.connect("alice", token: token)
        let voice = try await ServingTests.attach(wav, name: "voice.wav", via: alice)
        #expect(voice.type == "audio/x-wav")
        #expect(voice.size == wav.count)
        #expect(voice.durationMs == 2_250)
        let video = try await ServingTests.attach(Data(mp4), name: "clip.mp4", via: alice)
        #expect(video.type == "video/mp4")
        #expect(video.durationMs == 90_000)
        #expect(try await server.count("SELECT count(*) FROM blobs WHERE duration_ms IS NOT NULL") == 2)
        // Other files have none.
        #expect(try await ServingTests.attach(Samples.text, name: "note.txt", via: alice).durationMs == nil)
        await server.stop()
    }
}
