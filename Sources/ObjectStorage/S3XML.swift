import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// A parsed XML element: enough of a tree for S3's small answers (ListBucketResult, InitiateMultipartUploadResult,
/// CompleteMultipartUploadResult, ListMultipartUploadsResult, Error). Namespaces are ignored, as S3 puts every
/// element in its one default namespace.
struct XMLNode: Sendable {
    var name: String
    var text = ""
    var children: [XMLNode] = []

    func child(_ name: String) -> XMLNode? { children.first { $0.name == name } }
    func children(_ name: String) -> [XMLNode] { children.filter { $0.name == name } }
    /// The text of the child `name`, or nil when there is no such child.
    subscript(_ name: String) -> String? { child(name)?.text }

    /// The root element of `data`, or nil when it is not well-formed XML. External entities are not resolved
    /// (XMLParser's default), so a hostile answer cannot make the client read files.
    static func parse(_ data: Data) -> XMLNode? {
        let parser = XMLParser(data: data)
        let builder = TreeBuilder()
        parser.delegate = builder
        guard parser.parse() else { return nil }
        return builder.root
    }

    private final class TreeBuilder: NSObject, XMLParserDelegate {
        var stack: [XMLNode] = []
        var root: XMLNode?

        func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
                    qualifiedName qName: String?, attributes attributeDict: [String: String] = [:]) {
            stack.append(XMLNode(name: elementName))
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            guard !stack.isEmpty else { return }
            stack[stack.count - 1].text += string
        }

        func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?,
                    qualifiedName qName: String?) {
            guard let node = stack.popLast() else { return }
            if stack.isEmpty {
                root = node
            } else {
                stack[stack.count - 1].children.append(node)
            }
        }
    }

    /// `text` with the five XML special characters escaped, for request bodies.
    static func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(character)
            }
        }
        return out
    }
}

extension S3ErrorResponse {
    /// The error in an answer's body (`<Error><Code>…</Code><Message>…</Message></Error>`), or one named after the
    /// status when the body has none (HEAD answers, proxies' HTML pages).
    init(status: Int, body: Data, requestID: String?) {
        if let root = XMLNode.parse(body), root.name == "Error", let code = root["Code"], !code.isEmpty {
            self.init(status: status, code: code, message: root["Message"] ?? "", requestID: root["RequestId"] ?? requestID)
        } else {
            let name: String
            switch status {
            case 400: name = "BadRequest"
            case 403: name = "Forbidden"
            case 404: name = "NotFound"
            case 409: name = "Conflict"
            case 412: name = "PreconditionFailed"
            case 416: name = "InvalidRange"
            case 429: name = "TooManyRequests"
            case 500: name = "InternalError"
            case 503: name = "ServiceUnavailable"
            default: name = "HTTP\(status)"
            }
            self.init(status: status, code: name, message: "", requestID: requestID)
        }
    }
}
