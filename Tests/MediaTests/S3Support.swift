import ChatServer
import ChatServerFixture
import Foundation
import ObjectStorage
import TestProcesses
import Testing

/// Where a test's server keeps media: the local directory, or a bucket on a moto server the test starts (and always
/// stops). Suites whose cases hold for both take it as an argument.
enum MediaBackend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case local
    case s3

    var testDescription: String { rawValue }
}

/// Credentials moto accepts (it does not check signatures by default); the same for the server and chat-admin.
let testCredentials = Credentials(accessKeyID: "testing", secretAccessKey: "testing")
let testCredentialsEnvironment = ["AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                                  "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"]

/// One moto server with the `media` bucket, for one test.
final class TestBucket: Sendable {
    let moto: MotoServer
    static let bucket = "media"
    static let prefix = "chat"

    var port: Int { moto.port }
    /// The `--media-store` URL.
    var url: String { "s3://\(Self.bucket)/\(Self.prefix)?endpoint=\(moto.endpoint)&region=us-east-1" }

    private init(moto: MotoServer) {
        self.moto = moto
    }

    /// Starts moto (on `port` to come back where a server expects it) and creates the bucket.
    static func start(port: Int? = nil) async throws -> TestBucket {
        let bucket = TestBucket(moto: try await MotoServer.start(port: port))
        do {
            try await bucket.withClient { try await $0.createBucket() }
        } catch {
            bucket.moto.stop()
            throw error
        }
        return bucket
    }

    /// A server's (or a test's) configuration of this bucket: quick retries, so that a stopped store (connections
    /// refused at once) fails in test time, and timeouts long enough for a loaded machine. `through` is the port of
    /// a proxy in front of moto (a `FakeS3Server` forwarding to it).
    func configuration(multipartThreshold: Int = 16 << 20, listPageSize: Int = 1000, through proxy: Int? = nil) -> S3Configuration {
        S3Configuration(location: S3Location(bucket: Self.bucket, prefix: Self.prefix,
                                             endpoint: S3Location.Endpoint(secure: false, host: "127.0.0.1", port: proxy ?? port)),
                        credentials: testCredentials,
                        retry: RetryPolicy(attempts: 3, initialBackoff: .milliseconds(20), maxBackoff: .milliseconds(50)),
                        connectTimeout: .seconds(30), readTimeout: .seconds(60), multipartThreshold: multipartThreshold, partSize: 5 << 20,
                        listPageSize: listPageSize)
    }

    /// Runs `body` with a client of the bucket, always shut down.
    func withClient<T: Sendable>(listPageSize: Int = 1000, _ body: (S3Client) async throws -> T) async throws -> T {
        let client = S3Client(configuration: configuration(listPageSize: listPageSize))
        do {
            let result = try await body(client)
            try await client.shutdown()
            return result
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    /// Every key in the bucket.
    func keys() async throws -> [String] {
        try await withClient { client in
            var keys: [String] = []
            for try await object in client.list(prefix: "") { keys.append(object.key) }
            return keys.sorted()
        }
    }

    /// How many requests moto logged whose line contains `text` (e.g. `"PUT /media/chat/blobs/`).
    func requests(containing text: String) -> Int {
        moto.log.split(separator: "\n").count { $0.contains(text) }
    }

    func stop() {
        moto.stop()
    }
}

extension MediaBackend {
    /// Runs `body` with a server on this backend (and the bucket, for S3), both always stopped.
    func withServer<T: Sendable>(configure: (inout ServerConfiguration) -> Void = { _ in }, multipartThreshold: Int = 16 << 20,
                                 _ body: (MediaServer, TestBucket?) async throws -> T) async throws -> T {
        let bucket = self == .s3 ? try await TestBucket.start() : nil
        do {
            let server = try await MediaServer.start { configuration in
                configuration.objectStore = bucket?.configuration(multipartThreshold: multipartThreshold)
                configure(&configuration)
            }
            do {
                let result = try await body(server, bucket)
                await server.stop()
                bucket?.stop()
                return result
            } catch {
                await server.stop()
                throw error
            }
        } catch {
            bucket?.stop()
            throw error
        }
    }
}
