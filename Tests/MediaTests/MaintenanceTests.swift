import ChatClient
import ChatProtocol
@_spi(Testing) import ChatServerFixture
@_spi(Testing) import ChatStore
import Foundation
import MediaMaintenance
import MediaStore
import TestProcesses
import Testing

/// `chat-admin media stats|verify|prune|gc` on a real data directory while a real server runs.
@Suite("Media store maintenance while the server runs", .serialized, .stopsServers)
struct MaintenanceTests {
    @Test("stats figures agree with the files, the messages and the uploads")
    func stats() async throws {
        let server = try await MediaServer.start()
        let alice = try await server.connect("alice", token: try await server.makeToken("alice", role: .customer)).0
        let bob = try await server.connect("bob", token: try await server.makeToken("bob", role: .customer)).0
        let image = try await Samples.image("stats.png")
        let text = Data(randomBytes(30_000, seed: 1))
        let unsent = Data(randomBytes(5_000, seed: 2))
        let imageDone = try await upload(image, as: "photo.png", by: alice)
        try await send(imageDone, by: alice, id: "a1")
        try await send(imageDone, by: alice, id: "a2")  // the same file sent twice
        let bobImage = try await upload(image, as: "same.png", by: bob)  // deduplicated
        try await send(bobImage, by: bob, id: "b1")
        try await send(try await upload(text, as: "log.bin", by: bob), by: bob, id: "b2")
        _ = try await upload(unsent, as: "draft.bin", by: alice)

        let result = try await runAdmin(["media", "stats", "--by-user", "--json", "--data-dir", server.directory])
        #expect(result.status == 0, "\(result.stderr)")
        let stats = try JSONDecoder().decode(MediaStats.self, from: Data(result.stdout.utf8))
        let blobFiles = server.files(under: "blobs")
        let thumbFiles = server.files(under: "thumbs")
        #expect(stats.blobs == 3 && blobFiles.count == 3)
        #expect(stats.blobFiles == blobFiles.count)
        #expect(stats.bytesStored == Int64(image.count + text.count + unsent.count))
        #expect(stats.blobFileBytes == fileBytes(blobFiles.map { server.mediaDirectory + "/blobs/" + $0 }))
        #expect(stats.thumbnails == thumbFiles.count && stats.thumbnails > 0)
        #expect(stats.thumbnailBytes == fileBytes(thumbFiles.map { server.mediaDirectory + "/thumbs/" + $0 }))
        #expect(stats.attachments == 4)
        #expect(stats.bytesReferenced == Int64(3 * image.count + text.count))
        #expect(stats.dedupSavings == Int64(2 * image.count))
        #expect(stats.unreferencedBlobs == 1 && stats.unreferencedBytes == Int64(unsent.count))
        #expect(stats.byType.first { $0.type == "image/png" }?.bytes == Int64(image.count))
        #expect(stats.byType.first { $0.type == "application/octet-stream" }?.blobs == 2)
        let users = Dictionary(uniqueKeysWithValues: (stats.byUser ?? []).map { ($0.user, $0) })
        #expect(users["alice"]?.uploads == 2 && users["alice"]?.bytesUploaded == Int64(image.count + unsent.count))
        #expect(users["bob"]?.distinctBlobs == 2 && users["bob"]?.bytesPresent == Int64(image.count + text.count))
        #expect(stats.oldest != nil && stats.oldest! <= stats.newest!)

        let human = try await runAdmin(["media", "stats", "--data-dir", server.directory])
        #expect(human.status == 0)
        #expect(human.stdout.contains("image/png") && human.stdout.contains("KiB"))
        await server.stop()
    }

    @Test("verify finds a flipped byte, a wrong size, a missing file and a stray file; --repair quarantines them")
    func verify() async throws {
        let server = try await MediaServer.start()
        let aliceToken = try await server.makeToken("alice", role: .customer)
        let agentToken = try await server.makeToken("sam", role: .agent)
        let (alice, _) = try await server.connect("alice", token: aliceToken, lastSeq: 0)
        var uploads: [UploadDone] = []
        for seed in 1...5 {
            let done = try await upload(Data(randomBytes(20_000 + Int(seed), seed: UInt64(seed))), as: "f\(seed).bin", by: alice)
            try await send(done, by: alice, id: "m\(seed)")
            uploads.append(done)
        }
        let clean = try await runAdmin(["media", "verify", "--json", "--data-dir", server.directory])
        #expect(clean.status == 0, "\(clean.stderr)")
        let cleanReport = try JSONDecoder().decode(VerifyReport.self, from: Data(clean.stdout.utf8))
        #expect(cleanReport.checked == 5 && cleanReport.problems == 0)
        #expect(cleanReport.bytesHashed == Int64(uploads.reduce(0) { $0 + $1.attachment.size }))

        let layout = MediaLayout(directory: server.mediaDirectory)
        let flipped = uploads[0].attachment.sha256, truncated = uploads[1].attachment.sha256, missing = uploads[2].attachment.sha256
        try flipByte(at: 777, in: layout.blobPath(flipped))
        try FileHandle(forWritingTo: URL(fileURLWithPath: layout.blobPath(truncated))).truncate(atOffset: 100)
        try FileManager.default.removeItem(atPath: layout.blobPath(missing))
        let stray = layout.blobsDirectory + "/ab/cd/" + String(repeating: "ab", count: 32)
        try FileManager.default.createDirectory(atPath: layout.blobsDirectory + "/ab/cd", withIntermediateDirectories: true)
        try Data("not a blob".utf8).write(to: URL(fileURLWithPath: stray))
        try backdate(stray)

        let found = try await runAdmin(["media", "verify", "--json", "--data-dir", server.directory])
        #expect(found.status == 2)
        let report = try JSONDecoder().decode(VerifyReport.self, from: Data(found.stdout.utf8))
        #expect(report.corrupted == [flipped])
        #expect(report.wrongSize.map(\.hash) == [truncated] && report.wrongSize.first?.actual == 100)
        #expect(report.missing == [missing])
        #expect(report.stray == [stray])
        // Reporting changed nothing.
        #expect(try await server.count("SELECT count(*) FROM blobs WHERE state = 'present'") == 5)
        #expect(FileManager.default.fileExists(atPath: stray))

        let repaired = try await runAdmin(["media", "verify", "--repair", "--json", "--data-dir", server.directory])
        #expect(repaired.status == 0, "\(repaired.stderr)")
        let repair = try JSONDecoder().decode(VerifyReport.self, from: Data(repaired.stdout.utf8))
        #expect(repair.quarantined == [flipped, truncated, missing].sorted())
        #expect(repair.strayMoved == 1)
        #expect(!FileManager.default.fileExists(atPath: stray))
        #expect(try FileManager.default.contentsOfDirectory(atPath: layout.quarantineDirectory).count == 3)  // 2 blobs + stray
        #expect(try await server.count("SELECT count(*) FROM blobs WHERE state = 'quarantined'") == 3)
        let after = try await runAdmin(["media", "verify", "--data-dir", server.directory])
        #expect(after.status == 0 && after.stdout.contains("no problems"))

        // Clients see the quarantined attachments as expired, never as errors; downloads say 410 Gone.
        let (agent, _) = try await server.connect("sam", token: agentToken)
        let history = try await fetchHistory(agent, customer: "alice")
        let expired = Set(history.flatMap { $0.attachments ?? [] }.filter { $0.expired == true }.map(\.sha256))
        #expect(expired == [flipped, truncated, missing])
        #expect(try await server.request("GET", "/media/\(flipped)", token: agentToken).status == 410)
        #expect(try await server.request("GET", "/media/\(uploads[3].attachment.sha256)", token: agentToken).status == 200)
        // Attaching a quarantined upload is refused with its own code.
        try alice.send(.send(Send(clientId: "again", text: "", attachments: [AttachmentReference(uploadId: uploads[0].uploadId)])))
        let refusal = try await alice.receive(timeout: frameWait) { if case .error(let error) = $0 { error } else { nil } }
        #expect(refusal.code == .attachmentExpired)
        // Uploading the right bytes again brings the blob back for everyone.
        let again = try await upload(Data(randomBytes(20_001, seed: 1)), as: "f1.bin", by: alice)
        #expect(again.attachment.sha256 == flipped && !again.duplicate)
        #expect(try await server.request("GET", "/media/\(flipped)", token: agentToken).status == 200)
        await server.stop()
    }

    @Test("prune by each criterion; a dry run changes nothing; pruned attachments show as expired")
    func prune() async throws {
        let server = try await MediaServer.start()
        let aliceToken = try await server.makeToken("alice", role: .customer)
        let agentToken = try await server.makeToken("sam", role: .agent)
        let (alice, _) = try await server.connect("alice", token: aliceToken, lastSeq: 0)
        let day: Int64 = 86_400_000
        let now = epochMilliseconds()
        // name, bytes, sent in a message?, days since last reference
        let plan: [(String, Data, Bool, Int64)] = [
            ("old-sent.bin", Data(randomBytes(10_000, seed: 10)), true, 200),
            ("old-unsent.bin", Data(randomBytes(12_000, seed: 11)), false, 120),
            ("big.bin", Data(randomBytes(300_000, seed: 12)), true, 30),
            ("photo.png", try await Samples.image("prune.png", width: 400, height: 300), true, 20),
            ("recent.bin", Data(randomBytes(8_000, seed: 13)), false, 0),
        ]
        var hashes: [String: String] = [:]
        for (index, (name, bytes, sent, age)) in plan.enumerated() {
            let done = try await upload(bytes, as: name, by: alice)
            if sent { try await send(done, by: alice, id: "p\(index)") }
            hashes[name] = done.attachment.sha256
            if age > 0 {
                try await server.sqlite().execute("UPDATE blobs SET last_referenced_at = ? WHERE hash = ?", now - age * day, done.attachment.sha256)
            }
        }
        let photo = try #require(hashes["photo.png"])
        let layout = MediaLayout(directory: server.mediaDirectory)
        let photoThumbnails = server.files(under: "thumbs").filter { $0.contains(photo) }
        #expect(!photoThumbnails.isEmpty)

        func dryRun(_ arguments: [String]) async throws -> Set<String> {
            let result = try await runAdmin(["media", "prune", "--dry-run", "--json", "--data-dir", server.directory] + arguments)
            #expect(result.status == 0, "\(result.stderr)")
            let report = try JSONDecoder().decode(PruneReport.self, from: Data(result.stdout.utf8))
            #expect(report.dryRun && report.removed.isEmpty)
            #expect(report.bytes == report.candidates.reduce(0) { $0 + $1.size })
            return Set(report.candidates.map(\.hash))
        }
        let filesBefore = server.files(under: "blobs") + server.files(under: "thumbs")
        #expect(try await dryRun(["--older-than", "90d"]) == [hashes["old-sent.bin"]!, hashes["old-unsent.bin"]!])
        #expect(try await dryRun(["--unreferenced"]) == [hashes["old-unsent.bin"]!])  // recent.bin is within the grace period
        #expect(try await dryRun(["--larger-than", "200KiB"]) == [hashes["big.bin"]!])
        #expect(try await dryRun(["--type", "image/*"]) == [photo])
        #expect(try await dryRun(["--type", "image/png", "--older-than", "25d"]).isEmpty)
        // 342 KB present + the photo; a budget of 100 KB needs the least recently referenced first: old-sent,
        // old-unsent, then big.
        #expect(try await dryRun(["--max-total", "100KB"]) == [hashes["old-sent.bin"]!, hashes["old-unsent.bin"]!, hashes["big.bin"]!])
        #expect(server.files(under: "blobs") + server.files(under: "thumbs") == filesBefore)
        #expect(try await server.count("SELECT count(*) FROM blobs WHERE state = 'present'") == 5)
        let human = try await runAdmin(["media", "prune", "--dry-run", "--older-than", "90d", "--data-dir", server.directory])
        #expect(human.stdout.contains("would remove 2 blobs") && human.stdout.contains("nothing changed"))
        // Prune with no criterion is a usage error.
        #expect(try await runAdmin(["media", "prune", "--data-dir", server.directory]).status == 64)
        #expect(try await runAdmin(["media", "prune", "--unreferenced", "--grace", "10s", "--data-dir", server.directory]).status == 64)

        let unreferenced = try await runAdmin(["media", "prune", "--unreferenced", "--json", "--data-dir", server.directory])
        #expect(try JSONDecoder().decode(PruneReport.self, from: Data(unreferenced.stdout.utf8)).removed == [hashes["old-unsent.bin"]!])
        let older = try await runAdmin(["media", "prune", "--older-than", "90d", "--json", "--data-dir", server.directory])
        #expect(try JSONDecoder().decode(PruneReport.self, from: Data(older.stdout.utf8)).removed == [hashes["old-sent.bin"]!])
        let large = try await runAdmin(["media", "prune", "--larger-than", "200KiB", "--json", "--data-dir", server.directory])
        #expect(try JSONDecoder().decode(PruneReport.self, from: Data(large.stdout.utf8)).removed == [hashes["big.bin"]!])
        let images = try await runAdmin(["media", "prune", "--type", "image/*", "--keep-thumbnails", "--json", "--data-dir", server.directory])
        #expect(try JSONDecoder().decode(PruneReport.self, from: Data(images.stdout.utf8)).removed == [photo])
        #expect(server.files(under: "blobs") == ["sha256/" + layout.fanOut(hashes["recent.bin"]!) + "/" + hashes["recent.bin"]!])
        #expect(server.files(under: "thumbs").filter { $0.contains(photo) } == photoThumbnails)  // kept
        #expect(try await server.count("SELECT count(*) FROM blobs WHERE state = 'pruned' AND removed_at IS NOT NULL") == 4)
        #expect(try FileManager.default.contentsOfDirectory(atPath: layout.trashDirectory).isEmpty)

        // The budget criterion on its own: 8 KB present, a 1 KB budget evicts the last one.
        try await server.sqlite().execute("UPDATE blobs SET last_referenced_at = ? WHERE state = 'present'", now - day)
        let budget = try await runAdmin(["media", "prune", "--max-total", "1KB", "--json", "--data-dir", server.directory])
        let budgetReport = try JSONDecoder().decode(PruneReport.self, from: Data(budget.stdout.utf8))
        #expect(budgetReport.removed == [hashes["recent.bin"]!] && budgetReport.totalAfter == 0)
        #expect(server.files(under: "blobs").isEmpty)

        // Messages keep their attachments' metadata, marked expired; a kept thumbnail is still served.
        let (agent, _) = try await server.connect("sam", token: agentToken)
        let attachments = try await fetchHistory(agent, customer: "alice").flatMap { $0.attachments ?? [] }
        #expect(attachments.count == 3)
        #expect(attachments.allSatisfy { $0.expired == true && $0.size > 0 && !$0.name.isEmpty })
        #expect(attachments.first { $0.sha256 == photo }?.thumbnails.isEmpty == false)
        #expect(try await server.request("GET", "/media/\(photo)", token: agentToken).status == 410)
        #expect(try await server.request("GET", "/media/\(photo)/thumbnail/fit320", token: agentToken).status == 200)
        #expect(try await server.request("GET", "/media/\(hashes["big.bin"]!)", token: aliceToken).status == 410)
        await server.stop()
    }

    @Test("gc removes stale uploads, orphan blobs and thumbnails, finishes an interrupted prune, spares young files")
    func gc() async throws {
        let server = try await MediaServer.start()
        let (alice, _) = try await server.connect("alice", token: try await server.makeToken("alice", role: .customer), lastSeq: 0)
        let kept = try await upload(try await Samples.image("gc.png"), as: "gc.png", by: alice)
        try await send(kept, by: alice, id: "k")
        let layout = MediaLayout(directory: server.mediaDirectory)
        let old = epochMilliseconds() - 7_200_000

        // A crashed upload: its temporary file and record, both older than the resume window.
        let stalePart = layout.temporaryPath(upload: "ustale")
        try Data(randomBytes(4_000, seed: 3)).write(to: URL(fileURLWithPath: stalePart))
        try backdate(stalePart)
        try await server.sqlite().execute("""
            INSERT INTO uploads (id, username, name, state, created_at, updated_at) VALUES ('ustale', 'alice', 'x', 'receiving', ?, ?)
            """, old, old)
        // An orphan blob file and an orphan thumbnail, old; and a young orphan that an upload may be recording.
        let orphanBytes = Data(randomBytes(6_000, seed: 4))
        let orphan = layout.blobPath(sha256Hex(orphanBytes))
        try FileManager.default.createDirectory(atPath: (orphan as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try orphanBytes.write(to: URL(fileURLWithPath: orphan))
        try backdate(orphan)
        let youngBytes = Data(randomBytes(6_000, seed: 5))
        let young = layout.blobPath(sha256Hex(youngBytes))
        try FileManager.default.createDirectory(atPath: (young as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try youngBytes.write(to: URL(fileURLWithPath: young))
        let orphanThumbnail = layout.thumbnailPath(sha256Hex(orphanBytes), size: "fit320", type: "image/jpeg")
        try FileManager.default.createDirectory(atPath: (orphanThumbnail as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data([0xFF, 0xD8, 0xFF]).write(to: URL(fileURLWithPath: orphanThumbnail))
        try backdate(orphanThumbnail)
        // A prune that crashed after moving a blob to the trash but before committing: the blob is still present.
        try FileManager.default.createDirectory(atPath: layout.trashDirectory, withIntermediateDirectories: true)
        try FileManager.default.moveItem(atPath: layout.blobPath(kept.attachment.sha256), toPath: layout.trashDirectory + "/" + kept.attachment.sha256)

        let dry = try await runAdmin(["media", "gc", "--dry-run", "--json", "--data-dir", server.directory])
        #expect(dry.status == 0, "\(dry.stderr)")
        let plan = try JSONDecoder().decode(GarbageReport.self, from: Data(dry.stdout.utf8))
        #expect(plan.staleTemporaries == [stalePart] && plan.staleUploadRecords == 1)
        #expect(plan.orphanBlobs == [orphan])
        #expect(plan.orphanThumbnails == [orphanThumbnail])
        #expect(plan.trashRestored == [layout.trashDirectory + "/" + kept.attachment.sha256])
        #expect(FileManager.default.fileExists(atPath: stalePart) && FileManager.default.fileExists(atPath: orphan))

        let done = try await runAdmin(["media", "gc", "--data-dir", server.directory])
        #expect(done.status == 0, "\(done.stderr)")
        for path in [stalePart, orphan, orphanThumbnail] { #expect(!FileManager.default.fileExists(atPath: path), "\(path)") }
        #expect(FileManager.default.fileExists(atPath: young))
        #expect(try await server.count("SELECT count(*) FROM uploads WHERE id = 'ustale'") == 0)
        #expect(sha256Hex(try Data(contentsOf: URL(fileURLWithPath: layout.blobPath(kept.attachment.sha256)))) == kept.attachment.sha256)
        #expect(try await runAdmin(["media", "verify", "--data-dir", server.directory]).status == 0)
        await server.stop()
    }

    @Test("uploads and prunes at the same time: every referenced blob exists and is intact afterwards")
    func pruneDuringUploads() async throws {
        // Hundreds of uploads from two connections: lift the per-connection frame rate limit.
        let server = try await MediaServer.start { configuration in
            configuration.messagesPerSecond = 100_000
            configuration.burst = 100_000
        }
        let aliceToken = try await server.makeToken("alice", role: .customer)
        let (alice, _) = try await server.connect("alice", token: aliceToken, lastSeq: 0)
        let (bob, _) = try await server.connect("bob", token: try await server.makeToken("bob", role: .customer), lastSeq: 0)
        // 300 old, unsent uploads: all of them are prune candidates.
        let contents = (0..<300).map { Data(randomBytes(2_000 + $0, seed: UInt64(1_000 + $0))) }
        for (index, bytes) in contents.enumerated() {
            _ = try await upload(bytes, as: "old\(index).bin", by: index % 2 == 0 ? alice : bob)
        }
        try await server.sqlite().execute("UPDATE blobs SET last_referenced_at = ?", epochMilliseconds() - 86_400_000)

        // Meanwhile: bob uploads every third old file again and sends it, and new files too; alice's prunes run.
        let database = try server.database()
        let layout = MediaLayout(directory: server.mediaDirectory)
        let pruner = MediaPruner(catalog: SQLiteMediaCatalog(database: database), storage: LocalBlobStorage(layout: layout))
        var criteria = PruneCriteria()
        criteria.unreferenced = true
        criteria.grace = .seconds(60)
        let pruning = Task {
            var removed = 0
            for _ in 0..<20 {
                removed += try await pruner.prune(criteria, dryRun: false).removed.count
                try await Task.sleep(for: .milliseconds(20))
            }
            return removed
        }
        var sent: [String] = []
        for index in stride(from: 0, to: 300, by: 3) {
            let again = try await upload(contents[index], as: "again\(index).bin", by: bob)
            try await send(again, by: bob, id: "again\(index)")
            let fresh = try await upload(Data(randomBytes(3_000, seed: UInt64(5_000 + index))), as: "new\(index).bin", by: bob)
            try await send(fresh, by: bob, id: "new\(index)")
            sent += [again.attachment.sha256, fresh.attachment.sha256]
        }
        let removed = try await pruning.value
        #expect(removed > 0)
        #expect(removed <= 300)

        // Every attached blob is present, its file intact; every pruned one is unreferenced and gone.
        let rows = try await server.sqlite().rows("""
            SELECT b.hash, b.state, EXISTS (SELECT 1 FROM attachments a WHERE a.blob_hash = b.hash) AS referenced FROM blobs b
            """).map { ($0["hash"] ?? "", $0["state"] ?? "", $0["referenced"] == "1") }
        let referenced = Set(rows.filter { $0.2 }.map(\.0))
        #expect(referenced == Set(sent))
        for (hash, state, isReferenced) in rows {
            let path = layout.blobPath(hash)
            if isReferenced || state == "present" {
                #expect(state == "present", "\(hash)")
                let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
                #expect(sha256Hex(bytes) == hash)
            } else {
                #expect(state == "pruned")
                #expect(!FileManager.default.fileExists(atPath: path))
            }
        }
        let verify = try await runAdmin(["media", "verify", "--json", "--data-dir", server.directory])
        #expect(verify.status == 0, "\(verify.stdout)")
        await server.stop()
    }
}

// MARK: - Helpers

func upload(_ bytes: Data, as name: String, by connection: ChatConnection) async throws -> UploadDone {
    try await connection.upload(.bytes([UInt8](bytes)), name: name)
}

/// Sends a message with one attachment and waits for its acknowledgement.
func send(_ done: UploadDone, by connection: ChatConnection, id: String) async throws {
    try connection.send(.send(Send(clientId: id, text: "see \(done.attachment.name)", attachments: [AttachmentReference(uploadId: done.uploadId)])))
    _ = try await connection.receive(timeout: frameWait) { frame -> Ack? in
        if case .ack(let ack) = frame, ack.clientId == id { return ack }
        if case .error(let error) = frame, error.ref == id { Issue.record("send \(id) refused: \(error.message)") }
        return nil
    }
}

func fetchHistory(_ connection: ChatConnection, customer: String) async throws -> [ChatMessage] {
    try connection.send(.history(HistoryRequest(conversation: customer, limit: 100)))
    return try await connection.receive(timeout: frameWait) { if case .history(let page) = $0 { page.messages } else { nil } }
}

private func fileBytes(_ paths: [String]) -> Int64 {
    paths.reduce(0) { total, path in
        total + ((try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int64) ?? 0)
    }
}

private func flipByte(at offset: UInt64, in path: String) throws {
    let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
    try handle.seek(toOffset: offset)
    let byte = try handle.read(upToCount: 1) ?? Data([0])
    try handle.seek(toOffset: offset)
    try handle.write(contentsOf: Data([byte[0] ^ 0x01]))
    try handle.close()
}

/// Makes a file look two hours old, beyond the maintenance grace period.
private func backdate(_ path: String) throws {
    try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-7_200)], ofItemAtPath: path)
}

struct AdminResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs the built `chat-admin` and waits (at most a minute) for it.
func runAdmin(_ arguments: [String]) async throws -> AdminResult {
    try await runBuilt("chat-admin", arguments)
}

/// Runs one of the package's executables and waits (at most a minute) for it.
func runBuilt(_ name: String, _ arguments: [String], currentDirectory: String? = nil,
              environment: [String: String] = [:]) async throws -> AdminResult {
    let result = try await runTool(try builtExecutable(name), arguments, timeout: .seconds(60),
                                   currentDirectory: currentDirectory, environment: environment)
    return AdminResult(status: result.status, stdout: result.output, stderr: result.stderr)
}

