/// Display names and the name-versus-content check.
public enum FileNames {
    /// Longest display name in UTF-8 bytes (what most file systems allow).
    public static let maxBytes = 255

    /// A name safe to show and to put in a `Content-Disposition` header: path separators become `_`, control and
    /// invisible formatting characters (e.g. right-to-left overrides that disguise an extension) are dropped,
    /// leading dots and surrounding spaces are removed, and long names are cut to 255 bytes keeping the extension.
    public static func sanitize(_ name: String) -> String {
        var scalars = String.UnicodeScalarView()
        for scalar in name.unicodeScalars {
            switch scalar.properties.generalCategory {
            case .control, .format, .lineSeparator, .paragraphSeparator, .surrogate, .privateUse, .unassigned:
                continue
            default:
                break
            }
            if scalar == "/" || scalar == "\\" || scalar == ":" {
                scalars.append("_")
            } else {
                scalars.append(scalar)
            }
        }
        var result = String(scalars).trimmingSpaces()
        while result.hasPrefix(".") { result.removeFirst() }
        result = result.trimmingSpaces()
        if result.utf8.count > maxBytes {
            let ext = fileExtension(result).map { "." + $0 } ?? ""
            let keep = ext.utf8.count <= 16 ? ext : ""
            var stem = String(result.dropLast(keep.count))
            while stem.utf8.count + keep.utf8.count > maxBytes { stem.removeLast() }
            result = stem.trimmingSpaces() + keep
        }
        return result.isEmpty ? "file" : result
    }

    /// Lowercased extension after the last dot, if any.
    public static func fileExtension(_ name: String) -> String? {
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return nil }
        let ext = name[name.index(after: dot)...]
        return ext.isEmpty || ext.count > 16 ? nil : ext.lowercased()
    }

    /// True when the name has an extension we know and the sniffed type is not one it stands for, e.g. an
    /// executable called `photo.jpg`. Unknown or missing extensions are not judged.
    public static func extensionMismatch(name: String, mimeType: String) -> Bool {
        guard let ext = fileExtension(name), let expected = expectedTypes[ext] else { return false }
        return !expected.contains(mimeType)
    }

    private static let expectedTypes: [String: Set<String>] = {
        let text: Set<String> = ["text/plain"]
        var table: [String: Set<String>] = [
            "jpg": ["image/jpeg"], "jpeg": ["image/jpeg"], "jpe": ["image/jpeg"], "jfif": ["image/jpeg"],
            "png": ["image/png"], "gif": ["image/gif"], "webp": ["image/webp"], "bmp": ["image/bmp", "image/x-ms-bmp"],
            "tif": ["image/tiff"], "tiff": ["image/tiff"], "heic": ["image/heic", "image/heif"],
            "svg": ["image/svg+xml", "text/xml", "text/plain"], "ico": ["image/vnd.microsoft.icon", "image/x-icon"],
            "pdf": ["application/pdf"],
            "mp3": ["audio/mpeg", "audio/mp3"], "ogg": ["audio/ogg", "video/ogg", "application/ogg"],
            "oga": ["audio/ogg", "application/ogg"], "opus": ["audio/ogg", "application/ogg"],
            "wav": ["audio/x-wav", "audio/wav", "audio/vnd.wave"], "flac": ["audio/flac", "audio/x-flac"],
            "m4a": ["audio/mp4", "audio/x-m4a", "video/mp4"],
            "mp4": ["video/mp4", "audio/mp4"], "m4v": ["video/mp4", "video/x-m4v"], "mov": ["video/quicktime"],
            "webm": ["video/webm", "audio/webm"], "mkv": ["video/x-matroska"], "avi": ["video/x-msvideo"],
            "zip": ["application/zip"], "gz": ["application/gzip", "application/x-gzip"],
            "html": ["text/html"], "htm": ["text/html"],
            "json": ["application/json", "text/plain"],
            "docx": ["application/vnd.openxmlformats-officedocument.wordprocessingml.document", "application/zip"],
            "xlsx": ["application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "application/zip"],
        ]
        for ext in ["txt", "log", "md", "text"] { table[ext] = text }
        for ext in ["csv"] { table[ext] = ["text/csv", "text/plain"] }
        return table
    }()
}

extension String {
    func trimmingSpaces() -> String {
        var result = Substring(self)
        while let first = result.first, first.isWhitespace { result.removeFirst() }
        while let last = result.last, last.isWhitespace { result.removeLast() }
        return String(result)
    }
}
