import Foundation

/// An access key pair (and session token for temporary credentials). Its description, debug description and mirror
/// show the key id's first characters only, so interpolating or dumping it never leaks the secret into a log.
public struct Credentials: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable
{
    public var accessKeyID: String
    public var secretAccessKey: String
    public var sessionToken: String?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }

    public var description: String { "Credentials(\(accessKeyID.prefix(4))…, secret redacted)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["accessKeyID": "\(accessKeyID.prefix(4))…"]) }

    /// The credentials the AWS tools would use: `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (with
    /// `AWS_SESSION_TOKEN`) when set, otherwise the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, or
    /// `~/.aws/credentials`), profile `AWS_PROFILE` or `default`.
    public static func load(environment: [String: String] = ProcessInfo.processInfo.environment)
        throws(ObjectStorageError) -> Credentials
    {
        func value(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        switch (value("AWS_ACCESS_KEY_ID"), value("AWS_SECRET_ACCESS_KEY")) {
        case (let id?, let secret?):
            return Credentials(accessKeyID: id, secretAccessKey: secret, sessionToken: value("AWS_SESSION_TOKEN"))
        case (.some, nil):
            throw .credentials("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not")
        case (nil, .some):
            throw .credentials("AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not")
        case (nil, nil):
            break
        }
        let profile = value("AWS_PROFILE") ?? "default"
        let path: String
        if let file = value("AWS_SHARED_CREDENTIALS_FILE") {
            path = file
        } else if let home = value("HOME") {
            path = home + "/.aws/credentials"
        } else {
            throw .credentials("none found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
                + "AWS_SHARED_CREDENTIALS_FILE (HOME is not set, so ~/.aws/credentials cannot be read)")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .credentials("none found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or write profile "
                + "'\(profile)' to \(path) (AWS_SHARED_CREDENTIALS_FILE and AWS_PROFILE choose another file and profile)")
        }
        return try sharedFile(String(decoding: data, as: UTF8.self), profile: profile, path: path)
    }

    /// The profile `profile` of a shared credentials file's text (INI: `[name]` sections of `key = value` lines,
    /// `#` and `;` comments). `path` only names the file in errors.
    public static func sharedFile(_ text: String, profile: String, path: String = "the credentials file")
        throws(ObjectStorageError) -> Credentials
    {
        var section: String?
        var found = false
        var values: [String: String] = [:]
        for rawLine in text.split(whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") && line.hasSuffix("]") {
                var name = line.dropFirst().dropLast().trimmingCharacters(in: .whitespaces)
                // The config file's spelling, `[profile name]`, is accepted too.
                if name.hasPrefix("profile ") { name = name.dropFirst(8).trimmingCharacters(in: .whitespaces) }
                section = name
                found = found || name == profile
                continue
            }
            guard section == profile, let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            values[key] = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
        }
        guard found else { throw .credentials("profile '\(profile)' not found in \(path)") }
        guard let id = values["aws_access_key_id"], !id.isEmpty,
            let secret = values["aws_secret_access_key"], !secret.isEmpty
        else {
            throw .credentials("profile '\(profile)' in \(path) lacks aws_access_key_id or aws_secret_access_key")
        }
        let token = values["aws_session_token"].flatMap { $0.isEmpty ? nil : $0 }
        return Credentials(accessKeyID: id, secretAccessKey: secret, sessionToken: token)
    }
}
