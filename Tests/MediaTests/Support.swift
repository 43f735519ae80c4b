import ChatClient
import ChatProtocol
import ChatServer
@_spi(Testing) import ChatServerFixture
@_spi(Testing) import ChatStore
import Crypto
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Logging
import ServiceLifecycle
import TestProcesses
import Testing

/// The server fixture, with the media tests' helpers below.
typealias MediaServer = TestServer

extension TestServer {
    /// Connects with a bearer token and completes hello.
    func connect(_ user: String, token: String, lastSeq: Int? = nil, lastSeqs: [String: Int]? = nil) async throws -> (ChatConnection, Welcome) {
        try await open(user, token: token, lastSeq: lastSeq, lastSeqs: lastSeqs)
    }

    // MARK: HTTP

    struct HTTPResult: Sendable {
        var status: Int
        var headers: [String: String]
        var body: Data

        func header(_ name: String) -> String? {
            headers.first { $0.key.lowercased() == name.lowercased() }?.value
        }
    }

    func request(_ method: String, _ path: String, token: String?, headers: [String: String] = [:], body: Data? = nil) async throws -> HTTPResult {
        try await Self.request(method, httpBase + path, token: token, headers: headers, body: body)
    }

    /// A request to any server (a `chat-server` process too).
    static func request(_ method: String, _ address: String, token: String?, headers: [String: String] = [:],
                        body: Data? = nil) async throws -> HTTPResult {
        guard let url = URL(string: address) else { throw TestFailure("bad address \(address)") }
        var request = URLRequest(url: url)
        request.httpMethod = method
        request.timeoutInterval = 120
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        request.httpBody = body
        let (data, response) = try await URLSession.shared.data(for: request)
        guard let http = response as? HTTPURLResponse else { throw TestFailure("no HTTP response") }
        var fields: [String: String] = [:]
        for (key, value) in http.allHeaderFields { fields["\(key)"] = "\(value)" }
        return HTTPResult(status: http.statusCode, headers: fields, body: data)
    }

    func post(name: String, bytes: Data, token: String, sha256: String? = nil) async throws -> HTTPResult {
        var path = "/media?name=" + (name.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "x")
        if let sha256 { path += "&sha256=\(sha256)" }
        return try await request("POST", path, token: token, headers: ["Content-Type": "application/octet-stream"], body: bytes)
    }

    // MARK: Store inspection

    /// Regular files under `media/<sub>`, recursively.
    func files(under sub: String) -> [String] {
        let root = mediaDirectory + "/" + sub
        guard let enumerator = FileManager.default.enumerator(atPath: root) else { return [] }
        var files: [String] = []
        while let next = enumerator.nextObject() as? String {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: root + "/" + next, isDirectory: &isDirectory), !isDirectory.boolValue {
                files.append(next)
            }
        }
        return files.sorted()
    }

    func count(_ sql: String) async throws -> Int {
        Int(try await sqlite().int(sql) ?? 0)
    }

    /// Waits until `condition` holds (the server cleans up asynchronously after some failures).
    func eventually(timeout: Duration = frameWait, _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return try await condition()
    }

    /// Nothing of failed uploads is left: no temporary files, no upload rows still receiving.
    func isClean() async throws -> Bool {
        try await eventually {
            let receiving = try await count("SELECT count(*) FROM uploads WHERE state = 'receiving'")
            return files(under: "tmp").isEmpty && receiving == 0
        }
    }
}


func sha256Hex(_ data: some DataProtocol) -> String {
    SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
}

func randomBytes(_ count: Int, seed: UInt64 = 42) -> [UInt8] {
    var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    var bytes = [UInt8](repeating: 0, count: count)
    bytes.withUnsafeMutableBytes { raw in
        let words = raw.bindMemory(to: UInt64.self)
        for index in words.indices {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            words[index] = state
        }
        for index in (words.count * 8)..<count {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            raw[index] = UInt8(truncatingIfNeeded: state)
        }
    }
    return bytes
}

extension UploadError {
    var code: ErrorCode? {
        if case .rejected(let frame) = self { return frame.code }
        return nil
    }
}

/// Sample files of many types: made with ImageMagick where it is installed, by hand otherwise (libmagic needs only
/// the leading bytes).
enum Samples {
    static let directory: String = {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("media-samples-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }()

    static func image(_ name: String, width: Int = 640, height: Int = 480) async throws -> Data {
        let path = directory + "/" + name
        if !FileManager.default.fileExists(atPath: path) {
            // -strip: no date chunks, so the stored bytes are the sample's (metadata removal has its own tests).
            let made = try await runTool("/usr/local/bin/convert", ["-size", "\(width)x\(height)", "gradient:red-blue", "-strip", path])
            guard made.status == 0 else { throw TestFailure("convert failed for \(name): \(made.stderr)") }
        }
        return try Data(contentsOf: URL(fileURLWithPath: path))
    }

    static var mp3: Data {
        let frame: [UInt8] = [0xFF, 0xFB, 0x90, 0x64] + [UInt8](repeating: 0, count: 413)
        return Data(Array("ID3".utf8) + [3, 0, 0, 0, 0, 0, 0] + frame + frame + frame + frame)
    }

    static var ogg: Data {
        var page: [UInt8] = Array("OggS".utf8) + [0, 2] + [UInt8](repeating: 0, count: 8)
        page += [1, 0, 0, 0] + [0, 0, 0, 0] + [0, 0, 0, 0] + [1, 30]
        page += [1] + Array("vorbis".utf8) + [UInt8](repeating: 0, count: 23)
        return Data(page)
    }

    static var mp4: Data {
        var box: [UInt8] = [0, 0, 0, 24] + Array("ftypisom".utf8) + [0, 0, 2, 0] + Array("isomiso2".utf8)
        box += [0, 0, 0, 8] + Array("moov".utf8) + [UInt8](repeating: 0, count: 100)
        return Data(box)
    }

    static var pdf: Data {
        Data("%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n".utf8)
    }

    static var html: Data {
        Data("<!DOCTYPE html>\n<html><head><title>x</title></head><body><script>alert(1)</script></body></html>\n".utf8)
    }

    static var svg: Data {
        Data(#"<?xml version="1.0"?>\#n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)</script></svg>\#n"#.utf8)
    }

    static var text: Data {
        Data("Hello,\nthis is a plain text note about my order 1234.\n".utf8)
    }
}

/// A writer that fails like a full disk once `limit` bytes have been written through it.
final class FullDiskWriter: MediaFileWriter {
    private let written = Mutex(0)
    let limit: Int

    init(limit: Int) { self.limit = limit }

    func write(fd: Int32, bytes: UnsafeRawBufferPointer) -> Int32 {
        let allowed = written.withLock { total -> Bool in
            guard total + bytes.count <= limit else { return false }
            total += bytes.count
            return true
        }
        return allowed ? POSIXFileWriter().write(fd: fd, bytes: bytes) : ENOSPC
    }

    func sync(fd: Int32) -> Int32 { POSIXFileWriter().sync(fd: fd) }
}

import MediaStore
import Synchronization
