import Foundation

/// Everything an `S3Client` needs: where, who, and how patient to be.
public struct S3Configuration: Sendable {
    public var location: S3Location
    public var credentials: Credentials
    public var retry: RetryPolicy
    /// Opening a connection.
    public var connectTimeout: Duration
    /// Silence while waiting for the store's next bytes (of an answer's head or body).
    public var readTimeout: Duration
    /// From sending a request until its answer's head, the upload of a body or part included: generous, since a
    /// part may take long on a slow link. A download's body is bounded by `readTimeout` only, however long it is.
    public var requestTimeout: Duration
    /// Files larger than this are uploaded in parts. S3 allows a single PUT up to 5 GiB; parts keep a failure
    /// from costing the whole file and let a retry resend one part.
    public var multipartThreshold: Int
    /// The size of each part but the last. S3 and compatible stores refuse parts under 5 MiB (except the last),
    /// and allow at most 10,000 parts, so a larger part size is used for files that would need more.
    public var partSize: Int
    /// Keys per ListObjectsV2 page (S3's maximum is 1,000).
    public var listPageSize: Int

    public init(location: S3Location, credentials: Credentials, retry: RetryPolicy = RetryPolicy(),
                connectTimeout: Duration = .seconds(5), readTimeout: Duration = .seconds(30),
                requestTimeout: Duration = .seconds(300), multipartThreshold: Int = 16 << 20,
                partSize: Int = 8 << 20, listPageSize: Int = 1000) {
        self.location = location
        self.credentials = credentials
        self.retry = retry
        self.connectTimeout = connectTimeout
        self.readTimeout = readTimeout
        self.requestTimeout = requestTimeout
        self.multipartThreshold = multipartThreshold
        self.partSize = partSize
        self.listPageSize = listPageSize
    }

    /// The location from `CHAT_MEDIA_STORE` and credentials as `Credentials.load` finds them.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment)
        throws(ObjectStorageError) -> S3Configuration
    {
        guard let text = environment["CHAT_MEDIA_STORE"], !text.isEmpty else {
            throw .invalidLocation("CHAT_MEDIA_STORE is not set; expected s3://BUCKET/PREFIX?endpoint=http://HOST:PORT&region=REGION")
        }
        return S3Configuration(location: try S3Location(parsing: text), credentials: try Credentials.load(environment: environment))
    }
}

/// Bounded retries with exponential backoff for an unreachable store and for 5xx/SlowDown answers. 4xx answers are
/// never retried: the same request would be refused again.
public struct RetryPolicy: Sendable {
    /// Attempts in all, the first included.
    public var attempts: Int
    /// The wait after the first failure; each later wait doubles, up to `maxBackoff`.
    public var initialBackoff: Duration
    public var maxBackoff: Duration

    public init(attempts: Int = 3, initialBackoff: Duration = .milliseconds(100), maxBackoff: Duration = .milliseconds(400)) {
        self.attempts = max(1, attempts)
        self.initialBackoff = initialBackoff
        self.maxBackoff = maxBackoff
    }

    /// The wait after failed attempt `attempt` (1-based): the doubled backoff, of which the second half is random
    /// so that clients throttled together do not come back together.
    func backoff(after attempt: Int) -> Duration {
        var delay = initialBackoff
        for _ in 1..<max(1, attempt) where delay < maxBackoff { delay *= 2 }
        delay = min(delay, maxBackoff)
        return delay / 2 + delay / 2 * Double.random(in: 0...1)
    }
}
