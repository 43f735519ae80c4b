import ChatClient
import ChatProtocol
import ChatServerFixture
import ChatStore
import Foundation
import ImageFixtures
import MediaStore
import TestProcesses
import Testing
import Thumbnailer

/// Private image metadata removed at ingest, through a real server: uploads over the WebSocket and HTTP, the
/// stored blob, the message recipients see and the download.
@Suite("Image metadata removed at upload", .serialized, .stopsServers)
struct MetadataRemovalTests {
    /// A phone photo: EXIF with GPS, serials, owner and a maker note (orientation 6), XMP, and a second image with
    /// its own EXIF after EOI.
    static func phonePhoto() throws -> [UInt8] {
        let base = try Corpus.bytes("jpeg/testorig.jpg")
        let appended = JPEGBuilder.inserting([JPEGBuilder.exifSegment(ExifBuilder.camera(orientation: nil).tiff())], into: base)
        return JPEGBuilder.inserting([JPEGBuilder.exifSegment(ExifBuilder.camera(orientation: 6).tiff()), JPEGBuilder.xmpSegment(),
                                      JPEGBuilder.iccSegment()], into: base, trailer: appended)
    }

    static let privateStrings = ["PhoneMaker", "Phone 15 Pro", "MAKERNOTE-SECRET", "Jane Customer", "SERIAL-BODY", "SERIAL-LENS",
                                 "SERIAL-XMP", "GPSLatitude"]

    @Test("a JPEG with GPS goes up, its message and download carry no location or device data and show the same picture")
    func jpegEndToEnd() async throws {
        let server = try await MediaServer.start()
        let customerToken = try await server.makeToken("alice", role: .customer)
        let agentToken = try await server.makeToken("sam", role: .agent)
        let (customer, _) = try await server.connect("alice", token: customerToken, lastSeq: 0)
        let (agent, _) = try await server.connect("sam", token: agentToken)
        let photo = try Self.phonePhoto()

        // The declared hash is the sent bytes'; the attachment's is the cleaned bytes'.
        let done = try await customer.upload(.bytes(photo), name: "receipt.jpg", sha256: sha256Hex(photo))
        #expect(done.attachment.metadataRemoved == true)
        #expect(done.attachment.sha256 != sha256Hex(photo))
        #expect(done.attachment.size < photo.count)
        #expect(done.attachment.width == 149 && done.attachment.height == 227, "orientation 6 still swaps the displayed size")

        try customer.send(.send(Send(clientId: "m1", text: "my receipt", attachments: [AttachmentReference(uploadId: done.uploadId)])))
        let message = try await agent.receive(timeout: frameWait) { if case .message(let message) = $0 { message } else { nil } }
        #expect(message.attachments == [done.attachment])
        #expect(message.attachments?.first?.metadataRemoved == true)

        let download = try await server.request("GET", "/media/\(done.attachment.sha256)", token: agentToken)
        #expect(download.status == 200)
        let stored = [UInt8](download.body)
        #expect(sha256Hex(stored) == done.attachment.sha256)
        for text in Self.privateStrings { #expect(!stored.contains(text), "\(text) was served") }
        let thumbnailer = Thumbnailer()
        #expect(try thumbnailer.probe(stored).orientation == 6)
        #expect(try thumbnailer.decode(stored).pixels == thumbnailer.decode(photo).pixels)
        #expect(try await server.count("SELECT count(*) FROM blobs WHERE metadata_removed = 1") == 1)

        // The same photo again is the same blob.
        let again = try await customer.upload(.bytes(photo), name: "again.jpg")
        #expect(again.duplicate)
        #expect(again.attachment.sha256 == done.attachment.sha256)
        await server.stop()
    }

    @Test("a PNG with eXIf and tEXt posted over HTTP is stored without them")
    func pngOverHTTP() async throws {
        let server = try await MediaServer.start()
        let token = try await server.makeToken("alice", role: .customer)
        let base = try Corpus.bytes("pngsuite/png/basn2c08.png")
        let png = PNGBuilder.inserting([PNGBuilder.chunk("eXIf", ExifBuilder.camera(orientation: 1).tiff()),
                                        PNGBuilder.chunk("tEXt", Array("Author\0Jane Customer".utf8))], into: base)
        let posted = try await server.post(name: "screen.png", bytes: Data(png), token: token, sha256: sha256Hex(png))
        #expect(posted.status == 201)
        let done = try JSONDecoder().decode(UploadDone.self, from: posted.body)
        #expect(done.attachment.metadataRemoved == true)
        let blob = try [UInt8](Data(contentsOf: URL(fileURLWithPath: server.mediaDirectory + "/blobs/sha256/"
            + "\(done.attachment.sha256.prefix(2))/\(done.attachment.sha256.dropFirst(2).prefix(2))/\(done.attachment.sha256)")))
        #expect(blob == base, "the PNG without the two chunks is the corpus file")
        await server.stop()
    }

    /// A JPEG whose IFD0 offset points past the end of its EXIF: its orientation cannot be read safely.
    static func hostilePhoto() throws -> [UInt8] {
        var tiff = ExifBuilder.camera(orientation: 6).tiff()
        tiff[4] = 0xF0; tiff[5] = 0xFF; tiff[6] = 0xFF; tiff[7] = 0x7F
        return JPEGBuilder.inserting([JPEGBuilder.exifSegment(tiff)], into: try Corpus.bytes("jpeg/testorig.jpg"))
    }

    @Test("an image that cannot be cleaned is stored as sent and flagged by default, refused when the operator says so")
    func uncleanable() async throws {
        let hostile = try Self.hostilePhoto()
        let server = try await MediaServer.start()
        let token = try await server.makeToken("alice", role: .customer)
        let (client, _) = try await server.connect("alice", token: token)
        let stored = try await client.upload(.bytes(hostile), name: "odd.jpg")
        #expect(stored.attachment.metadataRemoved == false)
        #expect(stored.attachment.sha256 == sha256Hex(hostile))
        #expect(try await server.count("SELECT count(*) FROM blobs WHERE metadata_removed = 0") == 1)
        await server.stop()

        let strict = try await MediaServer.start { $0.media.imageMetadata = .remove(uncleanable: .refuse) }
        let strictToken = try await strict.makeToken("alice", role: .customer)
        let (strictClient, _) = try await strict.connect("alice", token: strictToken)
        do {
            _ = try await strictClient.upload(.bytes(hostile), name: "odd.jpg")
            Issue.record("an uncleanable image was accepted")
        } catch {
            #expect(error.code == .uncleanableImage)
            #expect(error.description.contains("cannot be cleaned"))
        }
        let posted = try await strict.post(name: "odd.jpg", bytes: Data(hostile), token: strictToken)
        #expect(posted.status == 422)
        #expect(try JSONDecoder().decode(ErrorFrame.self, from: posted.body).code == .uncleanableImage)
        #expect(try await strict.isClean())
        #expect(strict.files(under: "blobs").isEmpty)
        // A clean image still goes through.
        #expect(try await strictClient.upload(.bytes(try Self.phonePhoto()), name: "ok.jpg").attachment.metadataRemoved == true)
        await strict.stop()
    }

    @Test("--keep-image-metadata stores images as sent")
    func keep() async throws {
        let server = try await MediaServer.start { $0.media.imageMetadata = .keep }
        let token = try await server.makeToken("alice", role: .customer)
        let (client, _) = try await server.connect("alice", token: token)
        let photo = try Self.phonePhoto()
        let done = try await client.upload(.bytes(photo), name: "receipt.jpg")
        #expect(done.attachment.sha256 == sha256Hex(photo))
        #expect(done.attachment.metadataRemoved == nil)
        await server.stop()
    }
}
