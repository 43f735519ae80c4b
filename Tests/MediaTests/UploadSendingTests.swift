import ChatClient
import ChatProtocol
import Testing

@Suite("UploadSending: the one client upload loop, without I/O")
struct UploadSendingTests {
    private static let bytes = (0..<10_000).map { UInt8($0 % 251) }

    @Test("chunks go out up to the window ahead of the server's acknowledgement, then uploadEnd once")
    func windowAndEnd() throws {
        var sending = UploadSending(uploadId: "u1", offset: 0, size: Self.bytes.count, chunkSize: 1_000,
                                    window: UploadWindow(bytes: 3_000))
        var out: [UploadOutgoing] = []
        try sending.pump(.bytes(Self.bytes)) { out.append($0); return true }
        #expect(out.count == 3 && sending.sent == 3_000 && sending.waitsForAcknowledgement)
        sending.acknowledge(2_000)
        try sending.pump(.bytes(Self.bytes)) { out.append($0); return true }
        #expect(sending.sent == 5_000)
        sending.acknowledge(99_999)  // never past the size
        #expect(sending.acknowledged == Self.bytes.count)
        try sending.pump(.bytes(Self.bytes)) { out.append($0); return true }
        try sending.pump(.bytes(Self.bytes)) { out.append($0); return true }
        let chunks = out.compactMap { if case .chunk(let chunk) = $0 { chunk } else { nil } }
        #expect(chunks.flatMap { $0 } == Self.bytes)
        #expect(out.last == .end(UploadReference(uploadId: "u1")))
        #expect(out.filter { if case .end = $0 { true } else { false } }.count == 1)
    }

    @Test("a resume starts at the server's offset; a refused send stops the round and loses nothing")
    func resumeAndRefusal() throws {
        var sending = UploadSending(uploadId: "u2", offset: 4_000, size: Self.bytes.count, chunkSize: 2_500,
                                    maxFrameBytes: 2_024)
        #expect(sending.chunkSize == 1_000)
        var accepted = 2
        var chunks: [[UInt8]] = []
        try sending.pump(.bytes(Self.bytes)) { outgoing in
            guard accepted > 0, case .chunk(let chunk) = outgoing else { return false }
            accepted -= 1
            chunks.append(chunk)
            return true
        }
        #expect(sending.sent == 6_000 && !sending.ended)
        try sending.pump(.bytes(Self.bytes)) { outgoing in
            if case .chunk(let chunk) = outgoing { chunks.append(chunk) }
            return true
        }
        #expect(chunks.flatMap { $0 } == Array(Self.bytes[4_000...]))
        #expect(sending.ended)
    }

    @Test("a limit stops short of the end and sends no uploadEnd")
    func limit() throws {
        var sending = UploadSending(uploadId: "u3", offset: 0, size: Self.bytes.count, chunkSize: 4_096)
        var out: [UploadOutgoing] = []
        try sending.pump(.bytes(Self.bytes), limit: 5_000) { out.append($0); return true }
        #expect(sending.sent == 5_000 && out.count == 2 && !sending.ended)
    }
}
