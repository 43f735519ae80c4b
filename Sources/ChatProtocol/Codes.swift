/// Codes carried by `error` frames. The connection stays usable after each of them.
public enum ErrorCode: String, Codable, Sendable, CaseIterable {
    /// The frame is not valid JSON (or not a JSON object).
    case badJSON = "bad_json"
    /// The `type` field is missing or names no frame this server knows.
    case unknownType = "unknown_type"
    /// A field is missing, has the wrong type or an invalid value.
    case invalidFrame = "invalid_frame"
    /// The text is over the size limit (`limits.maxTextBytes`) or the frame is too large.
    case tooLarge = "too_large"
    /// Faster than the rate limit; `retryAfterMs` says when to try again.
    case rateLimited = "rate_limited"
    /// The frame addresses a conversation this user may not use (a customer naming another customer), or an
    /// agent-only frame from a customer.
    case forbidden
    /// No such customer or conversation.
    case unknownConversation = "unknown_conversation"
    /// A binary frame where none is expected.
    case unexpectedBinary = "unexpected_binary"
    /// `hello` sent twice.
    case alreadyAuthenticated = "already_authenticated"
    /// The server could not store the message (e.g. disk full). Nothing was stored; resend later with the same id.
    case storeFailed = "store_failed"
    /// The server is shutting down; reconnect later.
    case shuttingDown = "shutting_down"
    /// No such upload (never begun, finished, cancelled, expired, or another user's); `ref` names it.
    case unknownUpload = "unknown_upload"
    /// The bytes do not match what `uploadBegin` declared (more bytes than `size`, or another SHA-256). The
    /// upload is discarded.
    case uploadMismatch = "upload_mismatch"
    /// `uploadEnd` before all declared bytes arrived. The upload is discarded.
    case uploadIncomplete = "upload_incomplete"
    /// Zero-byte files are not stored.
    case emptyUpload = "empty_upload"
    /// Too many uploads in progress, or the daily upload allowance is used up.
    case quotaExceeded = "quota_exceeded"
    /// A `send` names an attachment that is not a finished upload of the sender.
    case unknownAttachment = "unknown_attachment"
    /// A `send` names a finished upload whose bytes an operator has since removed (pruned or quarantined). Upload
    /// the file again; nothing was stored.
    case attachmentExpired = "attachment_expired"
    /// An image whose location and device metadata cannot be removed safely (malformed EXIF, truncated segments),
    /// on a server that refuses such images. Nothing was stored; export the picture again and upload that.
    case uncleanableImage = "uncleanable_image"
}

/// WebSocket close codes used by the server, with a human-readable reason in the close frame.
public enum CloseCode {
    /// Normal closure.
    public static let normal: UInt16 = 1000
    /// The server is shutting down; reconnect with backoff.
    public static let goingAway: UInt16 = 1001
    /// Protocol error at the WebSocket level (e.g. a bad continuation frame).
    public static let protocolError: UInt16 = 1002
    /// A frame above the hard frame size limit.
    public static let messageTooBig: UInt16 = 1009
    /// Authentication failed: wrong, unknown, expired or revoked token, token of another user, or no `hello`
    /// with a token in time. Do not retry with the same token.
    public static let authenticationFailed: UInt16 = 4001
    /// No protocol version in common.
    public static let unsupportedProtocol: UInt16 = 4002
    /// The session's token was revoked or expired while connected.
    public static let sessionRevoked: UInt16 = 4003
    /// Protocol-level abuse: too many rejected frames in a short time.
    public static let flood: UInt16 = 4008
    /// The client did not read fast enough and the outbound buffer filled. Reconnect and resume by sequence.
    public static let slowConsumer: UInt16 = 4009
    /// The first frame was not `hello`, or `hello` did not come in time.
    public static let helloExpected: UInt16 = 4010
}
