import ChatProtocol
import Crypto
import Foundation

/// A row of the sessions table, never holding the token itself.
public struct SessionRecord: Sendable, Equatable {
    public var id: Int64
    public var username: String
    public var role: Role
    public var createdAt: Int64
    public var expiresAt: Int64?
    public var revokedAt: Int64?
    public var lastUsedAt: Int64?

    public init(id: Int64, username: String, role: Role, createdAt: Int64, expiresAt: Int64?, revokedAt: Int64?, lastUsedAt: Int64?) {
        self.id = id
        self.username = username
        self.role = role
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
        self.lastUsedAt = lastUsedAt
    }

    public func isActive(at now: Int64) -> Bool {
        revokedAt == nil && (expiresAt.map { $0 > now } ?? true)
    }
}

/// Why a token was not accepted. The server turns each into close code 4001 with this text as the reason.
public enum AuthFailure: Error, Sendable, Equatable, CustomStringConvertible {
    case missingToken
    case unknownToken
    case expired
    case revoked
    case wrongUser

    public var description: String {
        switch self {
        case .missingToken: "no token: send it as 'Authorization: Bearer <token>' or in the hello frame"
        case .unknownToken: "unknown token"
        case .expired: "token expired: ask an operator for a new one"
        case .revoked: "token revoked"
        case .wrongUser: "token does not belong to this user"
        }
    }
}

/// Creates, checks and revokes session tokens. Tokens are 256-bit random strings shown once; only their SHA-256
/// is stored, and hashes are compared in constant time.
public protocol TokenStore: Sendable {
    /// Creates a token for `username` with `role`, returning the token (to be shown once) and its record.
    func create(username: String, role: Role, expiresAt: Int64?, token: String) async throws(StoreError)
        -> (token: String, record: SessionRecord)

    /// Checks a presented token (and, when given, the user it should belong to).
    func authenticate(token: String, username: String?, now: Int64) async throws(StoreError) -> Result<SessionRecord, AuthFailure>

    /// All token records, newest first.
    func list() async throws(StoreError) -> [SessionRecord]

    /// The role of the user named `username` (any token of theirs, even revoked), nil when there is none.
    func role(of username: String) async throws(StoreError) -> Role?

    /// Revokes every active token of `username`. Returns the revoked records; throws `notFound` if there were none.
    @discardableResult
    func revoke(username: String) async throws(StoreError) -> [SessionRecord]

    /// Revokes one token by its id.
    @discardableResult
    func revoke(id: Int64) async throws(StoreError) -> [SessionRecord]

    /// Replaces the active tokens of `username` with a new one of the same role, in one transaction, and returns
    /// the new token (shown once) with the revoked records. The server's revocation watch cuts sessions of the old
    /// tokens within a second. `expiresAt` nil carries over the newest old token's lifetime (none if it had none).
    func rotate(username: String, expiresAt: Int64?, token: String) async throws(StoreError)
        -> (token: String, record: SessionRecord, revoked: [SessionRecord])

    /// Ids of sessions revoked at or after `since` (epoch ms), and the time of the look, both on the store's clock
    /// (PostgreSQL's, not the host's). The server watches this to cut live sessions of tokens revoked by `chat-admin`
    /// in another process, maybe on another host.
    func revokedSessions(since: Int64) async throws(StoreError) -> (ids: [Int64], checkedAt: Int64)

    /// Stores the original system's tokens hashed, with `role(username)` and no expiry, in one transaction, as
    /// `LegacyImportPlan` decides. Importing again changes nothing; `dryRun` reports without writing.
    func importLegacy(_ sessions: [LegacySession], role: @escaping @Sendable (String) -> Role, dryRun: Bool) async throws(StoreError)
        -> LegacyImportReport
}

extension TokenStore {
    public func create(username: String, role: Role, expiresAt: Int64? = nil) async throws(StoreError)
        -> (token: String, record: SessionRecord) {
        try await create(username: username, role: role, expiresAt: expiresAt, token: Tokens.generate())
    }

    public func authenticate(token: String, username: String? = nil) async throws(StoreError) -> Result<SessionRecord, AuthFailure> {
        try await authenticate(token: token, username: username, now: epochMilliseconds())
    }

    public func rotate(username: String, expiresAt: Int64? = nil) async throws(StoreError)
        -> (token: String, record: SessionRecord, revoked: [SessionRecord]) {
        try await rotate(username: username, expiresAt: expiresAt, token: Tokens.generate())
    }
}

/// Making and hashing tokens, the same for every store.
public enum Tokens {
    /// A new random token: 32 bytes from the system CSPRNG, base64url without padding (43 characters), never
    /// starting with `-`: a command line (`chat-client alice TOKEN`) would take such a token for an option. One in
    /// 64 draws is redrawn, which costs under 0.03 of the token's 256 bits.
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        while true {
            let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let token = Data(bytes).base64EncodedString()
                .replacingOccurrences(of: "+", with: "-")
                .replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
            if !token.hasPrefix("-") { return token }
        }
    }

    /// What the store keeps instead of the token.
    public static func hash(_ token: String) -> Data {
        Data(SHA256.hash(data: Data(token.utf8)))
    }
}

extension Tokens {
    /// The session a presented token opens, from the rows found by its hash: the hash is compared again in constant
    /// time so that correctness never rests on the lookup alone; with `username`, only that user's rows count.
    public static func choose(_ candidates: [(SessionRecord, Data)], presented: Data, username: String?, now: Int64)
        -> Result<SessionRecord, AuthFailure> {
        let matching = candidates.filter { constantTimeEqual($0.1, presented) }.map(\.0)
        guard !matching.isEmpty else { return .failure(.unknownToken) }
        let forUser = username.map { user in matching.filter { $0.username == user } } ?? matching
        guard let record = forUser.first(where: { $0.isActive(at: now) }) ?? forUser.first else {
            return .failure(.wrongUser)
        }
        if record.revokedAt != nil { return .failure(.revoked) }
        if let expiry = record.expiresAt, expiry <= now { return .failure(.expired) }
        return .success(record)
    }
}

/// Compares two byte strings in time that depends only on their length.
func constantTimeEqual(_ a: Data, _ b: Data) -> Bool {
    guard a.count == b.count else { return false }
    var difference: UInt8 = 0
    for (x, y) in zip(a, b) { difference |= x ^ y }
    return difference == 0
}
