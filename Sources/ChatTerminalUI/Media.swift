import ChatClient
import ChatProtocol
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import ImageBuffer
import Logging
import Thumbnailer

/// An upload in progress: WebSocket upload frames (docs/PROTOCOL.md (Attachments)), resumed after a reconnect.
struct UploadJob: Sendable {
    var requestId: String
    var uploadId: String?
    var path: String
    var name: String
    var size: Int
    /// Set by `uploadReady`, cleared when the connection drops (a resume starts a new round).
    var sending: UploadSending?
    var started = ContinuousClock.now
}

/// Attachment state owned by `ChatApp`: uploads, the preview cache. Network and rendering run in detached tasks
/// that report back to the actor, so typing never waits for them.
struct MediaState: Sendable {
    var uploads: [UploadJob] = []
    var counter = 0
    /// Previews by "sha/columns/rows": rendered once per attachment and terminal size, ready to draw.
    var previews: [String: [DisplayLine]] = [:]
    /// Decoded `fit320` thumbnails by SHA-256, so a resize renders previews again without downloading them again.
    var thumbnails: [String: RGBAImage] = [:]
    var loading: Set<String> = []
    var failed: Set<String> = []
    var columns = 80
    var rows = 24
}

extension ChatApp {
    var httpBase: String {
        var base = options.server
        if base.hasPrefix("wss://") { base = "https://" + base.dropFirst(6) }
        else if base.hasPrefix("ws://") { base = "http://" + base.dropFirst(5) }
        if base.hasSuffix("/ws") { base.removeLast(3) }
        return base
    }

    // MARK: Commands

    /// `/attach PATH` and `/save N [PATH]`.
    func mediaCommand(_ line: String, state: ChatState) {
        let parts = line.split(separator: " ", maxSplits: 1)
        let argument = parts.count > 1 ? String(parts[1]).trimmingCharacters(in: .whitespaces) : ""
        if parts.first == "/attach" {
            attach(argument, state: state)
        } else {
            save(argument, state: state)
        }
    }

    private func attach(_ rawPath: String, state: ChatState) {
        guard !rawPath.isEmpty else { notice(.error, "usage: /attach PATH"); return }
        let path = (rawPath as NSString).expandingTildeInPath
        guard state.current != nil || state.role == .customer else {
            notice(.error, "no conversation open: /switch NAME first")
            return
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            notice(.error, "cannot attach \(rawPath): no such file; nothing sent")
            return
        }
        guard !isDirectory.boolValue else {
            notice(.error, "cannot attach \(rawPath): it is a directory; nothing sent")
            return
        }
        guard FileManager.default.isReadableFile(atPath: path) else {
            notice(.error, "cannot attach \(rawPath): not readable (permissions); nothing sent")
            return
        }
        let size = ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
        guard size > 0 else { notice(.error, "cannot attach \(rawPath): the file is empty; nothing sent"); return }
        if let limit = state.limits?.maxUploadBytes, size > limit {
            notice(.error, "cannot attach \(rawPath): \(MessageFormatter.byteCount(size)) is over the server's limit of "
                             + "\(MessageFormatter.byteCount(limit)); nothing sent")
            return
        }
        if state.limits != nil && state.limits?.maxUploadBytes == nil {
            notice(.error, "this server does not accept attachments")
            return
        }
        media.counter += 1
        let name = (path as NSString).lastPathComponent
        let job = UploadJob(requestId: "u\(media.counter)", path: path, name: name, size: size)
        media.uploads.append(job)
        if isOnline, media.uploads.count == 1 { begin(job) }
        notice(.info, "uploading \(name) (\(MessageFormatter.byteCount(size)))")
    }

    private func begin(_ job: UploadJob) {
        if let uploadId = job.uploadId {
            send([.uploadResume(UploadResume(uploadId: uploadId, requestId: job.requestId))])
        } else {
            send([.uploadBegin(UploadBegin(requestId: job.requestId, name: job.name, size: job.size))])
        }
    }

    /// After `synced`: the current upload continues where the server has it.
    func resumeUploads() {
        guard let first = media.uploads.first else { return }
        media.uploads[0].sending = nil
        begin(first)
    }

    func mediaConnectionLost() {
        if !media.uploads.isEmpty { media.uploads[0].sending = nil }
    }

    func mediaHandle(_ frame: ServerFrame) {
        switch frame {
        case .uploadReady(let ready):
            guard let index = media.uploads.firstIndex(where: { $0.requestId == ready.requestId || $0.uploadId == ready.uploadId })
            else { return }
            media.uploads[index].uploadId = ready.uploadId
            media.uploads[index].started = .now
            media.uploads[index].sending = UploadSending(uploadId: ready.uploadId, offset: ready.offset, size: media.uploads[index].size,
                                                         chunkSize: ready.chunkSize, maxFrameBytes: limits?.maxFrameBytes)
            pump()
        case .uploadProgress(let progress):
            guard let index = media.uploads.firstIndex(where: { $0.uploadId == progress.uploadId }) else { return }
            media.uploads[index].sending?.acknowledge(progress.offset)
            pump()
        case .uploadDone(let done):
            guard let index = media.uploads.firstIndex(where: { $0.uploadId == done.uploadId }) else { return }
            media.uploads.remove(at: index)
            sendAttachmentMessage(AttachmentReference(uploadId: done.uploadId), attachment: done.attachment, text: "")
            if let next = media.uploads.first { begin(next) }
        case .error(let error):
            guard let ref = error.ref,
                  let index = media.uploads.firstIndex(where: { $0.uploadId == ref || $0.requestId == ref }) else { return }
            let job = media.uploads.remove(at: index)
            notice(.error, "upload of \(job.name) failed (\(error.code.rawValue)): \(error.message)")
            if index == 0, let next = media.uploads.first { begin(next) }
        default:
            break
        }
    }

    /// Sends what the upload window allows, then `uploadEnd`; called again on each `uploadProgress`.
    private func pump() {
        guard let job = media.uploads.first, var sending = job.sending else { return }
        do {
            try sending.pump(.file(job.path)) { outgoing in
                switch outgoing {
                case .chunk(let bytes):
                    return sendBinary(bytes)
                case .end(let reference):
                    guard isOnline else { return false }
                    send([.uploadEnd(reference)])
                    return true
                }
            }
        } catch {
            media.uploads.removeFirst()
            notice(.error, "upload of \(job.name) stopped: \(error)")
            return
        }
        media.uploads[0].sending = sending
    }

    /// `↑ name 45% 1.2 MB/2.6 MB 800 KB/s`.
    func progressText() -> String? {
        guard let job = media.uploads.first else { return nil }
        let acknowledged = job.sending?.acknowledged ?? 0
        let percent = job.size > 0 ? acknowledged * 100 / job.size : 0
        let elapsed = (ContinuousClock.now - job.started).inSeconds
        let rate = elapsed > 0.2 ? Double(acknowledged - (job.sending?.startOffset ?? 0)) / elapsed : 0
        let filled = percent / 10
        let bar = String(repeating: Glyphs.barFull, count: filled) + String(repeating: Glyphs.barEmpty, count: 10 - filled)
        return "\(Glyphs.upload) \(job.name.prefix(20)) \(bar) \(percent)% \(MessageFormatter.byteCount(acknowledged))/"
            + "\(MessageFormatter.byteCount(job.size)) \(MessageFormatter.byteCount(Int(rate)))/s"
    }

    private func save(_ argument: String, state: ChatState) {
        let parts = argument.split(separator: " ", maxSplits: 1)
        guard let first = parts.first, let number = Int(first) else {
            notice(.error, "usage: /save N [PATH] (N is the number shown next to the attachment)")
            return
        }
        guard let attachment = state.attachments[number] else {
            notice(.error, "no attachment [\(number)]")
            return
        }
        guard attachment.expired != true else {
            notice(.error, "[\(number)] \(attachment.name) has expired: the server no longer keeps its file; ask for it again")
            return
        }
        var target = parts.count > 1 ? (String(parts[1]) as NSString).expandingTildeInPath
            : FileManager.default.currentDirectoryPath + "/" + attachment.name
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: target, isDirectory: &isDirectory), isDirectory.boolValue {
            target += "/" + attachment.name
        }
        if FileManager.default.fileExists(atPath: target) {
            notice(.error, "\(target) exists; give another path: /save \(number) PATH")
            return
        }
        notice(.info, "downloading [\(number)] \(attachment.name) to \(target)")
        let url = httpBase + "/media/" + attachment.sha256
        let token = options.token
        let app = self
        Task.detached {
            do {
                let data = try await Self.get(url, token: token)
                try data.write(to: URL(fileURLWithPath: target), options: .withoutOverwriting)
                await app.notice(.info, "saved [\(number)] to \(target) (\(MessageFormatter.byteCount(data.count)))")
            } catch {
                await app.notice(.error, "could not save [\(number)]: \(error)")
            }
        }
    }

    struct HTTPFailure: Error, CustomStringConvertible {
        var status: Int
        var description: String {
            status == 410 ? "the file has expired on the server" : "the server answered HTTP \(status)"
        }
    }

    static func get(_ url: String, token: String) async throws -> Data {
        guard let url = URL(string: url) else { throw HTTPFailure(status: 0) }
        var request = URLRequest(url: url)
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        let (data, response) = try await URLSession.shared.data(for: request)
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard status == 200 else { throw HTTPFailure(status: status) }
        return data
    }

    // MARK: Previews

    func mediaResized(columns: Int, rows: Int) {
        media.columns = columns
        media.rows = rows
        // Previews of the old size are never shown again.
        media.previews = [:]
    }

    private func key(_ sha: String) -> String { "\(sha)/\(media.columns)/\(media.rows)" }

    func attachmentSeen(_ number: Int, state: ChatState) {
        guard let attachment = state.attachments[number] else { return }
        startPreview(attachment)
    }

    /// Downloads (once) and renders (once per size) a preview, off the actor; `previewReady` brings it back.
    private func startPreview(_ attachment: Attachment) {
        guard graphics.enabled, attachment.type.hasPrefix("image/"),
              attachment.thumbnails.contains(where: { $0.size == "fit320" }) else { return }
        let key = key(attachment.sha256)
        guard media.previews[key] == nil, !media.loading.contains(key), !media.failed.contains(attachment.sha256) else { return }
        media.loading.insert(key)
        let url = httpBase + "/media/\(attachment.sha256)/thumbnail/fit320"
        let token = options.token
        let graphics = self.graphics
        let columns = media.columns, rows = media.rows
        let app = self
        let sha = attachment.sha256
        let cached = media.thumbnails[sha]
        Task.detached {
            do {
                let image: RGBAImage
                if let cached {
                    image = cached
                } else {
                    image = try Thumbnailer().decode(Array(try await Self.get(url, token: token)))
                }
                let lines = graphics.lines(for: image, id: key, columns: columns, rows: rows)
                await app.previewReady(key: key, sha: sha, image: image, lines: lines)
            } catch {
                await app.previewReady(key: key, sha: sha, image: nil, lines: nil)
            }
        }
    }

    func previewReady(key: String, sha: String, image: RGBAImage?, lines: [DisplayLine]?) {
        media.loading.remove(key)
        if let image {
            // A few dozen thumbnails (300 KB each at most) cover any screen and its scrollback.
            if media.thumbnails.count >= 64, let evicted = media.thumbnails.keys.first { media.thumbnails[evicted] = nil }
            media.thumbnails[sha] = image
        }
        // Only the current size is kept; a preview made for a size the terminal no longer has is dropped.
        guard key == self.key(sha) else { return }
        if let lines { media.previews[key] = lines } else { media.failed.insert(sha) }
        render()
    }

    /// The card of an attachment, and its preview (or the space it will take while it loads).
    func mediaLines(for message: ChatMessage, index: Int, state: ChatState) -> [DisplayLine] {
        guard let list = message.attachments, index < list.count else { return [] }
        let attachment = list[index]
        let number = state.attachmentNumber(messageId: message.id, index: index).map { "[\($0)] " } ?? ""
        var card = String(repeating: " ", count: MessageFormatter.indent) + style.bold(number)
            + TextWidth.sanitize(attachment.name) + style.dim(" · \(attachment.type) · \(MessageFormatter.byteCount(attachment.size))")
        for detail in MessageFormatter.attachmentDetails(attachment) { card += style.dim(" · \(detail)") }
        if attachment.metadataRemoved == false {
            card += style.apply("1;33", " \(Glyphs.warning) may contain location data")
        }
        if attachment.nameMismatch { card += style.apply("1;31", " \(Glyphs.warning) the name does not match the content") }
        if attachment.expired == true { card += style.dim(" · expired") }
        var out = [DisplayLine(card)]
        guard graphics.enabled, attachment.type.hasPrefix("image/"),
              let thumb = attachment.thumbnails.first(where: { $0.size == "fit320" }) else { return out }
        if let preview = media.previews[key(attachment.sha256)] {
            out += preview
        } else if !media.failed.contains(attachment.sha256) {
            startPreview(attachment)
            let reserved = graphics.rows(width: thumb.width, height: thumb.height, columns: media.columns, rows: media.rows)
            out += (0..<reserved).map { $0 == 0 ? DisplayLine(String(repeating: " ", count: MessageFormatter.indent) + style.dim("loading preview…")) : DisplayLine("") }
        }
        return out
    }
}
