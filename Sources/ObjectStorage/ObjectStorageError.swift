/// What went wrong talking to the object store. Every case keeps its cause, and no description ever contains
/// credentials, signatures or the location string as given (it may carry a secret the user pasted by mistake).
public enum ObjectStorageError: Error, CustomStringConvertible {
    /// The location (`CHAT_MEDIA_STORE`) cannot be used; the text says which part and how to fix it.
    case invalidLocation(String)
    /// No usable credentials; the text says where they were looked for.
    case credentials(String)
    /// A key or key part that the store must not be asked for (empty, or not the shape a helper requires).
    case invalidKey(String)
    /// The store did not answer, or kept answering 5xx/SlowDown, through every attempt of the retry policy.
    case unavailable(operation: String, endpoint: String, attempts: Int, cause: any Error)
    /// The store refused the request (4xx, or another answer that retrying cannot fix).
    case rejected(operation: String, S3ErrorResponse)
    /// The store answered something this client cannot read.
    case invalidResponse(operation: String, detail: String)
    /// Reading the local file to upload failed.
    case file(path: String, cause: any Error)
    /// A multipart upload failed; `aborted` says whether its parts were removed from the store (AbortMultipartUpload
    /// succeeded). When false, `S3Client.abortMultipartUpload` with `uploadID` can be tried again later.
    case multipartUpload(key: String, uploadID: String, aborted: Bool, cause: any Error)
    /// The task was cancelled.
    case cancelled

    public var description: String {
        switch self {
        case .invalidLocation(let text): "invalid object store location: \(text)"
        case .credentials(let text): "object store credentials: \(text)"
        case .invalidKey(let text): "invalid object key: \(text)"
        case .unavailable(let operation, let endpoint, let attempts, let cause):
            "the object store at \(endpoint) did not complete \(operation) after \(attempts) attempt(s) "
                + "(last: \(cause)); check that it runs and is reachable, "
                + "and that the endpoint and region in CHAT_MEDIA_STORE are right"
        case .rejected(let operation, let response):
            "the object store refused \(operation): \(response)\(response.hint.map { "; \($0)" } ?? "")"
        case .invalidResponse(let operation, let detail):
            "unexpected answer from the object store to \(operation): \(detail)"
        case .file(let path, let cause): "cannot read \(path) for upload: \(cause)"
        case .multipartUpload(let key, let uploadID, let aborted, let cause):
            "multipart upload of \(key) failed: \(cause); "
                + (aborted ? "its parts were removed (upload \(uploadID) aborted)"
                    : "its parts may remain in the store until upload \(uploadID) is aborted (chat-admin media gc does)")
        case .cancelled: "object store request cancelled"
        }
    }
}

/// An error answer from the store: the HTTP status, and S3's error code and message from the XML body (or the
/// status's name when the body has none, as for HEAD).
public struct S3ErrorResponse: Error, Sendable, Equatable, CustomStringConvertible {
    public var status: Int
    public var code: String
    public var message: String
    public var requestID: String?

    public init(status: Int, code: String, message: String, requestID: String? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.requestID = requestID
    }

    public var description: String {
        "\(status) \(code)" + (message.isEmpty ? "" : ": \(message)") + (requestID.map { " (request id \($0))" } ?? "")
    }

    /// What the operator can do about the common refusals.
    var hint: String? {
        switch code {
        case "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "Forbidden", "InvalidToken", "ExpiredToken":
            "check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) or the credentials file profile"
        case "NoSuchBucket":
            "create the bucket, or fix the bucket name in CHAT_MEDIA_STORE"
        case "AuthorizationHeaderMalformed", "PermanentRedirect", "IllegalLocationConstraintException":
            "check the region in CHAT_MEDIA_STORE"
        default: nil
        }
    }

    /// Worth another attempt: server errors and throttling, including the errors S3 may send inside a 200 answer
    /// to CompleteMultipartUpload.
    var isRetryable: Bool {
        status >= 500 || status == 429 || ["SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout"].contains(code)
    }
}
