import ChatClient
import ChatProtocol
import ChatStore
import Foundation
import ImageBuffer
import TerminalGraphics
import TestProcesses
import Testing
import Thumbnailer

/// The console as a person sees it: `chat-client` in a real xterm on a virtual screen, photographed after each step.
/// A preview counts as shown when the picture that `chat-client preview FILE` draws in the same terminal is found
/// on the chat screen at 25 dB or better, whole, or clipped to the rows in view where the view cuts it.
@Suite(.serialized) struct ScreenPhotoTests {
    /// Photos from Debian's mate-backgrounds (installed by `.ci/run`) and the libjpeg-turbo test image.
    static let originals = ["wood": "/usr/share/backgrounds/mate/nature/Wood.jpg",
                            "ladybird": "/usr/share/backgrounds/mate/nature/LadyBird.jpg",
                            "flower": "/usr/share/backgrounds/mate/nature/FreshFlower.jpg",
                            "box": URL(fileURLWithPath: #filePath).deletingLastPathComponent()
                                .appendingPathComponent("../../../shared/corpus/jpeg/testorig.jpg").standardized.path]

    @Test(.timeLimit(.minutes(3))) func sixelPreviewsStayWholeOnEveryPathOfTheAgentAndCustomerConsoles() async throws {
        let chat = try await ChatFixture()
        defer { chat.stop() }
        // Phone-sized copies (800 px at most): the server's debug build makes their thumbnails quickly.
        let photos = try await chat.photos(Self.originals)
        let wood = try photos.path("wood"), ladybird = try photos.path("ladybird")
        let flower = try photos.path("flower"), box = try photos.path("box")
        // Before the agent starts: the wood photo, then more than a history page of lines, then the ladybird, so
        // that opening the conversation shows the ladybird and `/history` brings the wood photo.
        try await chat.sendPhoto(wood, text: "the scratched table")
        try await chat.sendLines((1...55).map { "line \($0)" })
        try await chat.sendPhoto(ladybird, text: "and the ladybird on it")

        let display = try VirtualDisplay()
        defer { display.stop() }
        // What each photo looks like in this terminal at 40 and at 30 rows: `chat-client preview`, side by side.
        let references = try await PreviewReferences(display: display, client: chat.client,
                                                     wanted: [wood, ladybird, flower, box].map { ($0, 40) } + [(box, 30)])
        let agent = try await Xterm(display: display, kind: .sixel, command: chat.clientCommand(user: "sam", log: "agent"))
        defer { agent.stop() }
        let customer = try await Xterm(display: display, kind: .sixel, x: 1300, command: chat.clientCommand(user: "alice", log: "customer"))
        defer { customer.stop() }

        // The customer's own backlog at start-up.
        try await customer.expect("customer: backlog", references, rows: 40, whole: [ladybird])
        // Backlog replay when the agent opens the conversation.
        try await agent.type("/switch alice")
        try await agent.expect("agent: /switch", references, rows: 40, whole: [ladybird], absent: [wood])
        // An older page: the view goes to its top, where the wood photo is.
        try await agent.type("/history")
        try await agent.expect("agent: /history", references, rows: 40, whole: [wood], absent: [ladybird])
        // PgDn back to the newest messages.
        for _ in 0..<3 { try await agent.key("Next") }
        try await agent.expect("agent: PgDn", references, rows: 40, whole: [ladybird], absent: [wood])
        // PgUp and back: the ladybird leaves the view and is drawn again when it returns.
        try await agent.key("Prior")
        try await agent.expect("agent: PgUp", references, rows: 40, absent: [ladybird])
        try await agent.key("Next")
        try await agent.expect("agent: PgDn again", references, rows: 40, whole: [ladybird])

        // Live arrivals: several previews on one screen; the third pushes the ladybird partly off the top, where it
        // is drawn clipped to its rows still in view.
        try await chat.sendPhoto(flower, text: "the flower pot")
        try await agent.expect("agent: live photo", references, rows: 40, whole: [flower, ladybird])
        try await chat.sendLines(["is it covered", "by the warranty", "thanks"])
        try await chat.sendPhoto(box, text: "and the box")
        try await agent.expect("agent: live photo pushing one off the top", references, rows: 40,
                               whole: [box, flower], clipped: [ladybird])
        try await customer.expect("customer: live photos", references, rows: 40, whole: [box, flower])
        // Ctrl-L draws the same again.
        try await agent.key("ctrl+l")
        try await agent.expect("agent: Ctrl-L", references, rows: 40, whole: [box, flower], clipped: [ladybird])
        // PgUp leaves the ladybird cut by the bottom of the area instead: drawn down to its last row in view.
        try await agent.key("Prior")
        try await agent.expect("agent: PgUp to a preview cut at the bottom", references, rows: 40, clipped: [ladybird],
                               absent: [box, flower])
        try await agent.key("Next")
        try await agent.expect("agent: PgDn to the newest", references, rows: 40, whole: [box, flower], clipped: [ladybird])

        // A smaller terminal: previews are laid out again for it (a third of its rows at most).
        let shot = try await agent.screenshot()
        let cell = shot.cell(columns: 100, rows: 40)
        try await agent.resize(columns: 100, rows: 30, cell: cell)
        try await agent.expect("agent: resized smaller", references, rows: 30, whole: [box])
        // And bigger again.
        try await agent.resize(columns: 100, rows: 40, cell: cell)
        let final = try await agent.expect("agent: resized bigger", references, rows: 40,
                                           whole: [box, flower], clipped: [ladybird])
        if let path = ProcessInfo.processInfo.environment["CHAT_CONSOLE_SCREENSHOT"] {
            // `CHAT_CONSOLE_SCREENSHOT=$PWD/docs/agent-console.png swift test --filter ScreenPhotoTests` remakes the
            // README's picture.
            let kept = try await final.keep(named: "agent-console")
            try? FileManager.default.removeItem(atPath: path)
            try FileManager.default.moveItem(atPath: kept, toPath: path)
        }
    }
}

extension ScreenPhotoTests {
    @Test(.timeLimit(.minutes(2))) func halfBlockPreviewsIn256ColoursAreAtLeastAsFaithfulAsChafas() async throws {
        let chat = try await ChatFixture()
        defer { chat.stop() }
        let wood = try await chat.photos(["wood": try Self.originals.path("wood")]).path("wood")
        try await chat.sendPhoto(wood, text: "the scratched table")
        let display = try VirtualDisplay()
        defer { display.stop() }

        // Ours, as `chat-client preview` draws it in a plain 256-colour xterm (no COLORTERM: the 256-colour palette).
        let references = try await PreviewReferences(display: display, client: chat.client, wanted: [(wood, 40)],
                                                     kind: .plain256)
        let ours = try references.picture(wood, rows: 40)
        // The same thumbnail the server makes, drawn by chafa in as many cells.
        let thumbnail = chat.directory + "/wood-fit320.jpg"
        try await runToolChecked(try builtExecutable("chat-thumbnail"), [wood, thumbnail, "--size", "fit320"])
        let columns = ours.width / references.cell.width, rows = ours.height / references.cell.height
        let chafa = try await PreviewReferences(display: display, kind: .plain256, drawings: [
            (key: "chafa", rows: 40, command: "chafa --format symbols --symbols vhalf --colors 256 --stretch "
                + "--size \(columns)x\(rows) '\(thumbnail)'"),
        ]).picture("chafa", rows: 40)
        #expect(chafa.width == ours.width && chafa.height == ours.height,
                "chafa drew \(chafa.width)x\(chafa.height) pixels, ours \(ours.width)x\(ours.height)")

        // Pixel work off the cooperative pool (see Xterm.screenshot).
        let (oursPSNR, chafaPSNR) = try await offPool { () throws -> (Double, Double) in
            let source = try Thumbnailer().decode([UInt8](try Data(contentsOf: URL(fileURLWithPath: thumbnail))))
            let expected = ImageResize.resize(source, width: ours.width, height: ours.height)
            var rgb = [UInt8]()
            rgb.reserveCapacity(expected.width * expected.height * 3)
            for pixel in 0..<(expected.width * expected.height) { rgb += expected.pixels[(pixel * 4)..<(pixel * 4 + 3)] }
            let reference = Screenshot(width: expected.width, height: expected.height, rgb: rgb)
            let full = 0..<ours.height
            return (reference.psnr(of: ours, rows: full, x: 0, y: 0), reference.psnr(of: chafa, rows: full, x: 0, y: 0))
        }
        #expect(oursPSNR >= chafaPSNR, "ours \(oursPSNR) dB, chafa's \(chafaPSNR) dB against the thumbnail")

        // And the chat shows exactly that preview.
        let agent = try await Xterm(display: display, kind: .plain256, command: chat.clientCommand(user: "sam", log: "agent"))
        defer { agent.stop() }
        try await agent.type("/switch alice")
        try await agent.expect("agent in 256 colours: /switch", references, rows: 40, whole: [wood])
    }
}

/// How each photo looks in this terminal, drawn by `chat-client preview` in an xterm of the same size; or what any
/// other command draws there.
struct PreviewReferences: Sendable {
    private var pictures: [String: Screenshot] = [:]
    /// The terminal's cell size in pixels.
    private(set) var cell = (width: 0, height: 0)

    /// Each wanted (photo, rows) drawn by `chat-client preview` in its own xterm.
    init(display: VirtualDisplay, client: String, wanted: [(photo: String, rows: Int)], kind: Xterm.Kind = .sixel) async throws {
        try await self.init(display: display, kind: kind, drawings: wanted.map {
            (key: $0.photo, rows: $0.rows, command: "\(client) preview '\($0.photo)'")
        })
    }

    /// Each command run in its own xterm of `rows` rows, all at once, side by side; kept as `key`.
    init(display: VirtualDisplay, kind: Xterm.Kind, drawings: [(key: String, rows: Int, command: String)]) async throws {
        try await withThrowingTaskGroup(of: (String, Screenshot, (width: Int, height: Int)).self) { group in
            for (index, item) in drawings.enumerated() {
                group.addTask {
                    let terminal = try await Xterm(display: display, kind: kind, rows: item.rows, x: index % 3 * 860,
                                                   y: index / 3 * 700, command: item.command)
                    defer { terminal.stop() }
                    // Done when something taller than a text row is drawn and two screenshots in a row agree. Rows
                    // with a few pixels only (the cursor) are not part of the picture.
                    let rows = item.rows
                    let shot = try await terminal.waitFor("the drawing of \(item.key) at \(rows) rows") { shot, last in
                        let cell = shot.cell(columns: 100, rows: rows)
                        guard let box = shot.contentBox(minimumPerRow: 2 * cell.width), box.height > 2 * cell.height else {
                            return "no picture yet"
                        }
                        return last?.rgb == shot.rgb ? nil : "still drawing"
                    }
                    let cell = shot.cell(columns: 100, rows: rows)
                    let picture = try await offPool { () throws -> Screenshot in
                        guard let box = shot.contentBox(minimumPerRow: 2 * cell.width) else {
                            throw TestFailure("\(item.command) drew nothing")
                        }
                        return shot.crop(x: box.x, y: box.y, width: box.width, height: box.height)
                    }
                    return (Self.key(item.key, rows), picture, cell)
                }
            }
            for try await (key, picture, cell) in group {
                pictures[key] = picture
                self.cell = cell
            }
        }
    }

    private static func key(_ photo: String, _ rows: Int) -> String { "\(photo)@\(rows)" }

    func picture(_ photo: String, rows: Int) throws -> Screenshot {
        guard let picture = pictures[Self.key(photo, rows)] else { throw TestFailure("no reference for \(photo) at \(rows) rows") }
        return picture
    }
}

extension Xterm {
    /// Waits until the previews of `whole` are on screen in full, those of `clipped` partly (cut by the top or bottom
    /// of the message area), those of `absent` not at all, every photo at most once, and the status and input lines
    /// hold no fragment of a picture. Returns the screenshot that showed it.
    @discardableResult
    func expect(_ what: String, _ references: PreviewReferences, rows: Int, whole: [String] = [], clipped: [String] = [],
                absent: [String] = [], timeout: Duration = .seconds(25)) async throws -> Screenshot {
        let templates = try (whole + clipped + absent).map { ($0, try references.picture($0, rows: rows)) }
        let columns = self.columns
        do {
            return try await waitFor(what, timeout: timeout) { shot, _ in
                Self.check(shot, templates, columns: columns, rows: rows, whole: whole, clipped: clipped, absent: absent)
            }
        } catch {
            // The pictures looked for, beside the screen, for whoever reads the failure.
            var kept: [String] = []
            for (photo, template) in templates {
                kept.append(try await template.keep(named: "reference-" + URL(fileURLWithPath: photo).lastPathComponent))
            }
            throw TestFailure("\(error); the references are in \(kept.joined(separator: ", "))")
        }
    }

    private static func check(_ shot: Screenshot, _ templates: [(String, Screenshot)], columns: Int, rows: Int,
                              whole: [String], clipped: [String], absent: [String]) -> String? {
        let cell = shot.cell(columns: columns, rows: rows)
        guard shot.height == 2 * Screenshot.border + rows * cell.height else { return "the window is not \(rows) rows yet" }
        let area = Screenshot.border..<(Screenshot.border + (rows - 2) * cell.height)
        var problems: [String] = []
        for (photo, template) in templates {
            let name = URL(fileURLWithPath: photo).lastPathComponent
            let found = shot.find(template, x: Screenshot.border, cellHeight: cell.height, area: area)
            if whole.contains(photo), found.count != 1 || !found[0].whole {
                let best = shot.find(template, x: Screenshot.border, cellHeight: cell.height, area: area, minimumPSNR: 0)
                    .max { $0.psnr < $1.psnr }.map { " (best \($0))" } ?? ""
                problems.append("\(name) (\(template.width)x\(template.height)) should be whole once, found \(found)\(best)")
            }
            if clipped.contains(photo), found.count != 1 || found[0].whole {
                problems.append("\(name) should be partly in view once, found \(found)")
            }
            if absent.contains(photo), !found.isEmpty { problems.append("\(name) should not be in view, found \(found)") }
        }
        let bottom = (Screenshot.border + (rows - 2) * cell.height)..<shot.height
        let fragments = shot.colourfulPixels(rows: bottom)
        if fragments > 0 { problems.append("\(fragments) picture pixels in the status and input lines") }
        return problems.isEmpty ? nil : problems.joined(separator: "; ")
    }
}

extension Dictionary where Key == String, Value == String {
    func path(_ name: String) throws -> String {
        guard let path = self[name] else { throw TestFailure("no photo named \(name)") }
        return path
    }
}

/// A `chat-server` on a loopback port with a customer (alice) and an agent (sam), and the test's own connection as
/// alice for sending what the consoles should show.
final class ChatFixture: Sendable {
    let directory: String
    let client: String
    let server: ServerProcess
    let aliceToken: String
    let samToken: String
    private let alice: ChatConnection

    init() async throws {
        let serverBinary = try builtExecutable("chat-server")
        client = try builtExecutable("chat-client")
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("chat-xterm-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let tokens = SQLiteTokenStore(database: try ChatDatabase(path: DataDirectory(directory).databasePath))
        aliceToken = try await tokens.create(username: "alice", role: .customer).token
        samToken = try await tokens.create(username: "sam", role: .agent).token
        let directory = self.directory
        server = try await offPool {
            try ServerProcess(binary: serverBinary, directory: directory,
                              arguments: ["--durability", "normal", "--rate", "1000", "--burst", "1000"])
        }
        alice = ChatConnection(url: "ws://127.0.0.1:\(server.port)/ws", bearer: aliceToken)
        _ = try await alice.hello(Hello(user: "alice"))
    }

    /// Copies of `originals` (name: path) at most 800 pixels on a side, made with ImageMagick, by name.
    func photos(_ originals: [String: String]) async throws -> [String: String] {
        var copies: [String: String] = [:]
        for (name, path) in originals {
            guard FileManager.default.fileExists(atPath: path) else {
                throw TestFailure("\(path) is missing: the mate-backgrounds package and ../shared/corpus provide the test photos")
            }
            let copy = "\(directory)/\(name).jpg"
            try await runToolChecked(try requireExecutable("convert"), [path, "-resize", "800x800>", "-quality", "90", copy])
            copies[name] = copy
        }
        return copies
    }

    /// `chat-client` for `user`, with its log in the fixture's directory.
    func clientCommand(user: String, log: String) -> String {
        "exec \(client) \(user) \(user == "sam" ? samToken : aliceToken) --server ws://127.0.0.1:\(server.port)/ws "
            + "--log-file \(directory)/\(log).log"
    }

    func sendPhoto(_ path: String, text: String) async throws {
        let done = try await alice.upload(.file(path), name: URL(fileURLWithPath: path).lastPathComponent, timeout: frameWait)
        let id = UUID().uuidString
        try alice.send(.send(Send(clientId: id, text: text, attachments: [AttachmentReference(uploadId: done.uploadId)])))
        _ = try await alice.receive(timeout: frameWait) { if case .ack(let ack) = $0, ack.clientId == id { ack } else { nil } }
    }

    func sendLines(_ lines: [String]) async throws {
        var ids: Set<String> = []
        for line in lines {
            let id = UUID().uuidString
            ids.insert(id)
            try alice.send(.send(Send(clientId: id, text: line)))
        }
        while !ids.isEmpty {
            let id = try await alice.receive(timeout: frameWait) { if case .ack(let ack) = $0 { ack.clientId } else { nil } }
            ids.remove(id)
        }
    }

    func stop() {
        alice.close()
        server.kill()
        try? FileManager.default.removeItem(atPath: directory)
    }
}
