/// Rules for names and ids shared by the server, the admin tool and clients.
public enum Names {
    /// Usernames: 1 to 64 characters from letters, digits, `.`, `_`, `-`, `@`. Keeps them safe to show in a
    /// terminal and to use as conversation names.
    public static func isValidUsername(_ name: String) -> Bool {
        guard (1...64).contains(name.utf8.count) else { return false }
        return name.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == 0x2E || byte == 0x5F || byte == 0x2D || byte == 0x40
        }
    }

    /// Client message ids: 1 to 128 printable ASCII characters (a UUID fits).
    public static func isValidClientId(_ id: String) -> Bool {
        guard (1...128).contains(id.utf8.count) else { return false }
        return id.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
    }
}
