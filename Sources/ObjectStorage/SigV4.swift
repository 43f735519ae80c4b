import Crypto
import Foundation

// AWS Signature Version 4, by hand with swift-crypto's SHA-256 and HMAC. No S3 library is used because none is
// available to this package (no S3 SDK such as Soto is among the packages it can depend on), and the few calls
// the media store makes need only this signer, a handful of requests and a small XML reader.
// Tested against AWS's published SigV4 test suite (Tests/ObjectStorageTests/SigV4TestSuite).

/// Signs requests for one region and service with one set of credentials.
public struct SigV4Signer: Sendable {
    public var credentials: Credentials
    public var region: String
    public var service: String

    public init(credentials: Credentials, region: String, service: String = "s3") {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// A request to sign. `path` and `query` are plain (not percent-encoded): the signer encodes them, and the
    /// caller sends `Signature.canonicalURI` and `canonicalQuery`, so what is sent is exactly what was signed.
    public struct Request: Sendable {
        public var method: String
        public var path: String
        public var query: [(name: String, value: String)]
        public var headers: [(name: String, value: String)]
        /// Hex SHA-256 of the body, or `UNSIGNED-PAYLOAD`.
        public var payloadHash: String

        public init(method: String, path: String, query: [(name: String, value: String)] = [],
                    headers: [(name: String, value: String)], payloadHash: String) {
            self.method = method
            self.path = path
            self.query = query
            self.headers = headers
            self.payloadHash = payloadHash
        }
    }

    /// The signing's results, intermediate steps included for tests.
    public struct Signature: Sendable {
        public var canonicalURI: String
        public var canonicalQuery: String
        public var canonicalRequest: String
        public var stringToSign: String
        public var authorization: String
        /// The request's headers plus `x-amz-date`, `x-amz-security-token` (with a session token) and
        /// `Authorization`: what to send.
        public var headers: [(name: String, value: String)]
    }

    /// Signs `request` as of `date`. Any `x-amz-date` header in the request is replaced by `date`'s; a session token
    /// is added as `x-amz-security-token` (signed) unless the request already carries one.
    public func sign(_ request: Request, date: Date) -> Signature {
        let (amzDate, day) = Self.timestamps(date)
        var headers = request.headers.filter { $0.name.lowercased() != "x-amz-date" }
        headers.append((name: "X-Amz-Date", value: amzDate))
        if let token = credentials.sessionToken,
            !headers.contains(where: { $0.name.lowercased() == "x-amz-security-token" }) {
            headers.append((name: "X-Amz-Security-Token", value: token))
        }

        let canonicalURI = request.path.isEmpty ? "/" : Self.uriEncode(request.path, encodeSlash: false)
        // Encoded names and values, sorted by name, then value.
        let encodedQuery: [(name: String, value: String)] = request.query.map { item in
            (Self.uriEncode(item.name, encodeSlash: true), Self.uriEncode(item.value, encodeSlash: true))
        }
        let sortedQuery = encodedQuery.sorted { a, b in a.name == b.name ? a.value < b.value : a.name < b.name }
        let canonicalQuery = sortedQuery.map { item in item.name + "=" + item.value }.joined(separator: "&")
        // Headers by lowercase name in sorted order; values trimmed with inner runs of spaces made one; a name
        // given more than once gets its values joined by commas, in the order given.
        var grouped: [String: [String]] = [:]
        for header in headers {
            grouped[header.name.lowercased(), default: []].append(Self.trimmed(header.value))
        }
        let names = grouped.keys.sorted()
        let canonicalHeaders = names.map { "\($0):\(grouped[$0, default: []].joined(separator: ","))\n" }.joined()
        let signedHeaders = names.joined(separator: ";")
        let canonicalRequest = [request.method, canonicalURI, canonicalQuery, canonicalHeaders, signedHeaders,
                                request.payloadHash].joined(separator: "\n")

        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let stringToSign = ["AWS4-HMAC-SHA256", amzDate, scope, Self.hexSHA256(Data(canonicalRequest.utf8))]
            .joined(separator: "\n")
        var key = SymmetricKey(data: Data("AWS4\(credentials.secretAccessKey)".utf8))
        for part in [day, region, service, "aws4_request"] {
            key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data(part.utf8), using: key)))
        }
        let signature = Self.hex(HMAC<SHA256>.authenticationCode(for: Data(stringToSign.utf8), using: key))
        let authorization = "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), "
            + "SignedHeaders=\(signedHeaders), Signature=\(signature)"
        headers.append((name: "Authorization", value: authorization))
        return Signature(canonicalURI: canonicalURI, canonicalQuery: canonicalQuery,
                         canonicalRequest: canonicalRequest, stringToSign: stringToSign,
                         authorization: authorization, headers: headers)
    }

    /// The payload hash of an empty body.
    public static let emptyPayloadHash = hexSHA256(Data())

    /// For bodies streamed from a file: S3 accepts a signature that does not cover the body.
    public static let unsignedPayload = "UNSIGNED-PAYLOAD"

    public static func hexSHA256(_ data: some DataProtocol) -> String { hex(SHA256.hash(data: data)) }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// RFC 3986 encoding as SigV4 wants it: every byte but the unreserved `A-Z a-z 0-9 - . _ ~` as `%XX` (upper
    /// case), `/` kept in paths. S3 keys are encoded once (S3 does not want the double encoding of other services).
    public static func uriEncode(_ text: String, encodeSlash: Bool) -> String {
        let digits = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                out.append(byte)
            case UInt8(ascii: "/") where !encodeSlash:
                out.append(byte)
            default:
                out += [UInt8(ascii: "%"), digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// A header value trimmed, with every run of whitespace inside made one space.
    private static func trimmed(_ value: String) -> String {
        value.split(whereSeparator: { $0 == " " || $0 == "\t" || $0.isNewline }).joined(separator: " ")
    }

    /// `20150830T123600Z` and `20150830` in UTC.
    private static func timestamps(_ date: Date) -> (String, String) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? calendar.timeZone
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        func two(_ value: Int?) -> String { let v = value ?? 0; return v < 10 ? "0\(v)" : "\(v)" }
        let day = "\(c.year ?? 1970)\(two(c.month))\(two(c.day))"
        return ("\(day)T\(two(c.hour))\(two(c.minute))\(two(c.second))Z", day)
    }
}
