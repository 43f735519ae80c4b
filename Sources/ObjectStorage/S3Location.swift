import Foundation

/// Where objects live: `s3://BUCKET/PREFIX?endpoint=http://HOST:PORT&region=REGION` (the `CHAT_MEDIA_STORE`
/// setting). Requests use path-style addressing (`ENDPOINT/BUCKET/KEY`), which AWS and the self-hosted stores
/// (MinIO, Ceph RGW, Garage) all accept, with no DNS entry per bucket. Without `endpoint` the store is AWS's
/// `https://s3.REGION.amazonaws.com`; without `region`, `us-east-1` (what self-hosted stores expect by default).
///
/// Credentials are never part of the location: a URL with `user:password@` is refused.
public struct S3Location: Sendable, Equatable, CustomStringConvertible {
    public var bucket: String
    /// Key prefix without leading or trailing slash; empty for the bucket's root.
    public var prefix: String
    public var endpoint: Endpoint
    public var region: String

    /// The store's base URL: scheme, host and port, no path.
    public struct Endpoint: Sendable, Equatable, CustomStringConvertible {
        public var secure: Bool
        public var host: String
        public var port: Int

        public init(secure: Bool, host: String, port: Int? = nil) {
            self.secure = secure
            self.host = host
            self.port = port ?? (secure ? 443 : 80)
        }

        /// The Host header: the port only when it is not the scheme's default, as HTTP clients send it.
        public var hostHeader: String {
            let name = host.contains(":") ? "[\(host)]" : host
            return port == (secure ? 443 : 80) ? name : "\(name):\(port)"
        }

        public var description: String { (secure ? "https://" : "http://") + hostHeader }
    }

    public init(bucket: String, prefix: String = "", endpoint: Endpoint? = nil, region: String = "us-east-1") {
        self.bucket = bucket
        self.prefix = prefix.split(separator: "/", omittingEmptySubsequences: true).joined(separator: "/")
        self.region = region
        self.endpoint = endpoint ?? Endpoint(secure: true, host: "s3.\(region).amazonaws.com")
    }

    /// Parses a location string. Errors name the part that is wrong but never repeat the string itself.
    public init(parsing text: String) throws(ObjectStorageError) {
        guard let components = URLComponents(string: text) else {
            throw .invalidLocation("not a URL; expected s3://BUCKET/PREFIX?endpoint=http://HOST:PORT&region=REGION")
        }
        guard components.user == nil, components.password == nil else {
            throw .invalidLocation("the URL must not carry credentials (user:password@); set AWS_ACCESS_KEY_ID and "
                + "AWS_SECRET_ACCESS_KEY in the environment (or use a credentials file) instead")
        }
        guard components.scheme?.lowercased() == "s3" else {
            throw .invalidLocation("the scheme must be s3://, as in s3://BUCKET/PREFIX?endpoint=http://HOST:PORT")
        }
        guard let bucket = components.host, !bucket.isEmpty else {
            throw .invalidLocation("no bucket; expected s3://BUCKET/PREFIX")
        }
        guard Self.isValidBucketName(bucket) else {
            throw .invalidLocation("bucket '\(bucket)' is not a valid S3 bucket name (3 to 63 lowercase letters, "
                + "digits, '.' and '-', starting and ending with a letter or digit)")
        }
        guard components.port == nil else {
            throw .invalidLocation("a port belongs in the endpoint parameter, not after the bucket")
        }
        var endpoint: Endpoint?
        var region = "us-east-1"
        for item in components.queryItems ?? [] {
            switch item.name {
            case "endpoint":
                endpoint = try Self.parseEndpoint(item.value ?? "")
            case "region":
                guard let value = item.value, !value.isEmpty,
                    value.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") })
                else { throw .invalidLocation("the region must be a name such as us-east-1") }
                region = value
            default:
                throw .invalidLocation("unknown parameter '\(item.name)'; only endpoint and region are understood")
            }
        }
        self.init(bucket: bucket, prefix: components.path,
                  endpoint: endpoint, region: region)
    }

    private static func parseEndpoint(_ text: String) throws(ObjectStorageError) -> Endpoint {
        guard let url = URLComponents(string: text), let scheme = url.scheme?.lowercased(),
            scheme == "http" || scheme == "https", let host = url.host, !host.isEmpty
        else { throw .invalidLocation("the endpoint must be an http:// or https:// URL with a host, as in endpoint=http://HOST:PORT") }
        guard url.user == nil, url.password == nil else {
            throw .invalidLocation("the endpoint must not carry credentials (user:password@); set AWS_ACCESS_KEY_ID "
                + "and AWS_SECRET_ACCESS_KEY in the environment (or use a credentials file) instead")
        }
        guard url.path.isEmpty || url.path == "/", url.query == nil, url.fragment == nil else {
            throw .invalidLocation("the endpoint must be only scheme, host and port (the bucket goes after s3://)")
        }
        if let port = url.port, !(1...65535).contains(port) {
            throw .invalidLocation("the endpoint's port must be between 1 and 65535")
        }
        return Endpoint(secure: scheme == "https", host: host, port: url.port)
    }

    static func isValidBucketName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        func alphanumeric(_ byte: UInt8) -> Bool { (0x61...0x7A).contains(byte) || (0x30...0x39).contains(byte) }
        guard (3...63).contains(bytes.count), let first = bytes.first, let last = bytes.last,
            alphanumeric(first), alphanumeric(last)
        else { return false }
        return bytes.allSatisfy { alphanumeric($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
    }

    public var description: String {
        "s3://\(bucket)/\(prefix)?endpoint=\(endpoint)&region=\(region)"
    }

    // MARK: Keys

    /// `PREFIX/relative`, or `relative` when there is no prefix.
    public func key(_ relative: String) -> String {
        prefix.isEmpty ? relative : prefix + "/" + relative
    }

    /// Where blobs live, for listing them: `PREFIX/blobs/sha256/`.
    public var blobsPrefix: String { key("blobs/sha256/") }

    /// Where thumbnails live, for listing them: `PREFIX/thumbs/`.
    public var thumbnailsPrefix: String { key("thumbs/") }

    /// A blob's key, `PREFIX/blobs/sha256/ab/cd/<hash>`: the local store's layout, so tools that know one know both.
    public func blobKey(sha256 hash: String) throws(ObjectStorageError) -> String {
        try key("blobs/sha256/" + Self.fanOut(hash))
    }

    /// A thumbnail's key, `PREFIX/thumbs/ab/cd/<hash>/<size>.<ext>` (for example `thumbs/ab/cd/abcd…/fit320.jpg`):
    /// all thumbnails of one blob under one prefix, so removing a blob's thumbnails is one listing.
    public func thumbnailKey(sha256 hash: String, size: String, fileExtension: String) throws(ObjectStorageError) -> String {
        for part in [size, fileExtension] where part.isEmpty || !part.utf8.allSatisfy(Self.isKeyWordByte) {
            throw .invalidKey("thumbnail size and extension must be letters and digits, got '\(part)'")
        }
        return try key("thumbs/" + Self.fanOut(hash) + "/\(size).\(fileExtension)")
    }

    /// The prefix of all of one blob's thumbnails: `PREFIX/thumbs/ab/cd/<hash>/`.
    public func thumbnailsPrefix(sha256 hash: String) throws(ObjectStorageError) -> String {
        try key("thumbs/" + Self.fanOut(hash) + "/")
    }

    /// `ab/cd/<hash>` for a 64-digit lowercase hex SHA-256.
    private static func fanOut(_ hash: String) throws(ObjectStorageError) -> String {
        let bytes = Array(hash.utf8)
        guard bytes.count == 64, bytes.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) else {
            throw .invalidKey("expected a SHA-256 as 64 lowercase hex digits")
        }
        return "\(hash.prefix(2))/\(hash.dropFirst(2).prefix(2))/\(hash)"
    }

    private static func isKeyWordByte(_ byte: UInt8) -> Bool {
        (0x61...0x7A).contains(byte) || (0x41...0x5A).contains(byte) || (0x30...0x39).contains(byte)
    }
}
