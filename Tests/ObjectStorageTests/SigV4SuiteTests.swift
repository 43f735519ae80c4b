import Foundation
import ObjectStorage
import Testing

/// AWS's SigV4 test suite (see SigV4TestSuite/README.md): each case's canonical request, string to sign and
/// Authorization header, from its raw request.
@Suite("SigV4 against AWS's test suite")
struct SigV4SuiteTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("SigV4TestSuite")
    static let credentials = Credentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    static let date = Date(timeIntervalSince1970: 1_440_938_160)  // 20150830T123600Z

    static let cases: [String] = {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.filter { $0.hasSuffix(".req") }.map { String($0.dropLast(4)) }.sorted()
    }()

    @Test("the copied suite is there and large enough")
    func suiteIsPresent() {
        #expect(Self.cases.count >= 20, "\(Self.cases)")
        for name in ["get-vanilla", "get-vanilla-query-order-key-case", "post-x-www-form-urlencoded",
                     "get-header-value-trim", "get-utf8", "get-space", "get-header-key-duplicate"] {
            #expect(Self.cases.contains(name), "\(name) missing")
        }
    }

    @Test("canonical request, string to sign and Authorization", arguments: cases)
    func signs(_ name: String) throws {
        let request = try Self.parse(try Self.read(name, "req"))
        var credentials = Self.credentials
        if name == "get-vanilla-with-session-token" {
            credentials.sessionToken = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"
        }
        let signer = SigV4Signer(credentials: credentials, region: "us-east-1", service: "service")
        let signature = signer.sign(request, date: Self.date)
        #expect(signature.canonicalRequest == (try Self.read(name, "creq")))
        #expect(signature.stringToSign == (try Self.read(name, "sts")))
        #expect(signature.authorization == (try Self.read(name, "authz")))
        #expect(signature.headers.last?.value == signature.authorization)
    }

    @Test("S3 paths keep their slashes and are encoded once")
    func s3Paths() {
        #expect(SigV4Signer.uriEncode("/bucket/a b/ሴ+%", encodeSlash: false) == "/bucket/a%20b/%E1%88%B4%2B%25")
        #expect(SigV4Signer.uriEncode("a/b", encodeSlash: true) == "a%2Fb")
    }

    static func read(_ name: String, _ suffix: String) throws -> String {
        let text = try String(contentsOf: folder.appendingPathComponent("\(name).\(suffix)"), encoding: .utf8)
        return text.hasSuffix("\n") ? String(text.dropLast()) : text
    }

    /// A raw request of the suite: request line, `Name:value` headers (a line starting with whitespace continues
    /// the previous value), an empty line, the body.
    static func parse(_ text: String) throws -> SigV4Signer.Request {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let requestLine = lines.removeFirst()
        guard let methodEnd = requestLine.firstIndex(of: " "),
            let versionStart = requestLine.range(of: " HTTP/", options: .backwards)?.lowerBound
        else { throw ParseError(line: requestLine) }
        let method = String(requestLine[..<methodEnd])
        let target = requestLine[requestLine.index(after: methodEnd)..<versionStart]
        let path = String(target.prefix { $0 != "?" })
        var query: [(name: String, value: String)] = []
        if let mark = target.firstIndex(of: "?") {
            for item in target[target.index(after: mark)...].split(separator: "&") {
                let pair = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
                query.append((pair[0].removingPercentEncoding ?? pair[0],
                              pair.count > 1 ? pair[1].removingPercentEncoding ?? pair[1] : ""))
            }
        }
        var headers: [(name: String, value: String)] = []
        while let line = lines.first, !line.isEmpty {
            lines.removeFirst()
            if line.first == " " || line.first == "\t", !headers.isEmpty {
                headers[headers.count - 1].value += " " + line
                continue
            }
            guard let colon = line.firstIndex(of: ":") else { throw ParseError(line: line) }
            headers.append((String(line[..<colon]), String(line[line.index(after: colon)...])))
        }
        let body = lines.dropFirst().joined(separator: "\n")
        return SigV4Signer.Request(method: method, path: path, query: query, headers: headers,
                                   payloadHash: SigV4Signer.hexSHA256(Data(body.utf8)))
    }

    struct ParseError: Error { var line: String }
}
