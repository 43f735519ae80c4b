import Foundation
import Testing
@testable import ChatProtocol

/// The hand-written reader of `send` frames gives what `JSONDecoder` gives, and steps aside for everything else.
@Suite("Flat JSON reader")
struct FlatJSONReaderTests {
    private func fast(_ json: String) -> Send? {
        Data(json.utf8).withUnsafeBytes(FlatJSONReader.send)
    }

    private func reference(_ json: String) -> Send? {
        try? JSONDecoder().decode(Send.self, from: Data(json.utf8))
    }

    @Test("awkward texts and ids as JSONEncoder and JSONSerialization write them read back as JSONDecoder reads them")
    func encodedFrames() throws {
        for text in FlatJSONTests.awkward {
            for conversation in [nil, "alice", text] {
                let frame = ["type": "send", "clientId": "id " + text, "text": text].merging(conversation.map { ["conversation": $0] } ?? [:]) { $1 }
                let encodings = [try JSONEncoder().encode(frame), try JSONSerialization.data(withJSONObject: frame),
                                 try JSONSerialization.data(withJSONObject: frame, options: [.prettyPrinted, .withoutEscapingSlashes])]
                for data in encodings {
                    let json = String(decoding: data, as: UTF8.self)
                    let send = try #require(fast(json), "fast path taken for \(json)")
                    #expect(send == reference(json))
                    #expect(send == Send(clientId: "id " + text, text: text, conversation: conversation))
                }
            }
        }
    }

    @Test("escapes written by hand: \\u escapes and surrogate pairs, escaped slashes and keys, whitespace everywhere")
    func handWritten() throws {
        let cases = [
            #"{"type":"send","clientId":"a","text":"\u0041\u00e9\u4e2d\ud83d\ude80 \/ \" \\ \b\f\n\r\t"}"#,
            #"  { "text" : "x" , "clientId":"b" ,"type":"send" }  "#,
            "{\n\t\"type\":\"send\",\r\n\"cl\\u0069entId\":\"c\",\"text\":\"\",\"conversation\":\"bob\"}",
            #"{"type":"send","clientId":"d","text":"\uD83D\uDE80 upper-case hex"}"#,
        ]
        for json in cases {
            let send = try #require(fast(json), "fast path taken for \(json)")
            #expect(send == reference(json), "\(json)")
        }
    }

    @Test("anything but a flat object of known string members is left to JSONDecoder, whose answer stands")
    func givesUp() throws {
        let cases = [
            "", "[]", "\"send\"", "{}", "{", #"{"type":"send","clientId":"a","text":"b"} x"#,
            #"{"type":"send","clientId":"a","text":"b","attachments":[]}"#,
            #"{"type":"send","clientId":"a","text":"b","conversation":null}"#,
            #"{"type":"send","clientId":"a","text":7}"#,
            #"{"type":"send","clientId":"a","text":"b","extra":"c"}"#,
            #"{"type":"send","clientId":"a","text":"b","text":"c"}"#,
            #"{"type":"send","clientId":"a"}"#,
            #"{"type":"typing","clientId":"a","text":"b"}"#,
            #"{"type":"send","clientId":"a","text":"\ud83d alone"}"#,
            #"{"type":"send","clientId":"a","text":"\ude80 alone"}"#,
            #"{"type":"send","clientId":"a","text":"\x"}"#,
            #"{"type":"send","clientId":"a","text":"\u12"}"#,
            "{\"type\":\"send\",\"clientId\":\"a\",\"text\":\"raw\ncontrol\"}",
            #"{"type":"send","clientId":"a","text":"unterminated}"#,
            #"{"type":"send","clientId":"a","text":"b",}"#,
        ]
        let codec = FrameCodec()
        for json in cases {
            #expect(fast(json) == nil, "\(json)")
            // The public decoder still answers, through JSONDecoder: a frame for the valid ones, an error otherwise.
            if json.contains(#""type":"send""#) {
                #expect((try? codec.decodeClientFrame(Data(json.utf8))) == reference(json).map(ClientFrame.send), "\(json)")
            }
        }
    }
}
