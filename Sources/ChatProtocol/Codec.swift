import Foundation

/// Why a client frame could not be decoded, with the `ErrorCode` the server answers with.
public struct FrameDecodingError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: ErrorCode
    public var message: String
    public var description: String { "\(code.rawValue): \(message)" }

    public init(code: ErrorCode, message: String) {
        self.code = code
        self.message = message
    }
}

private struct Envelope: Decodable {
    var type: String?
    var requestId: String?
    var clientId: String?
    var uploadId: String?
}

private struct PingPayload: Codable {
    var requestId: String?
}

/// Encodes and decodes frames. One instance per task or connection (encoders and decoders are not shared across
/// threads).
public struct FrameCodec: Sendable {
    public init() {}

    // MARK: Client frames

    /// Decodes a client frame, mapping each failure to the error code the protocol specifies.
    public func decodeClientFrame(_ data: Data) throws(FrameDecodingError) -> ClientFrame {
        // The frequent plain `send` first; anything else, valid or not, takes the full decoder.
        if let send = data.withUnsafeBytes(FlatJSONReader.send) { return .send(send) }
        let decoder = JSONDecoder()
        let envelope: Envelope
        do {
            envelope = try decoder.decode(Envelope.self, from: data)
        } catch let DecodingError.typeMismatch(_, context) where context.codingPath.isEmpty {
            throw FrameDecodingError(code: .badJSON, message: "a frame must be a JSON object")
        } catch let DecodingError.typeMismatch(_, context) {
            throw FrameDecodingError(code: .invalidFrame, message: Self.describe(context: context, problem: "has the wrong type"))
        } catch {
            throw FrameDecodingError(code: .badJSON, message: "the frame is not valid JSON")
        }
        guard let type = envelope.type else {
            throw FrameDecodingError(code: .unknownType, message: "the frame has no \"type\" field")
        }
        do {
            switch type {
            case "hello": return .hello(try decoder.decode(Hello.self, from: data))
            case "send": return .send(try decoder.decode(Send.self, from: data))
            case "broadcast": return .broadcast(try decoder.decode(Broadcast.self, from: data))
            case "history": return .history(try decoder.decode(HistoryRequest.self, from: data))
            case "read": return .read(try decoder.decode(ReadMarker.self, from: data))
            case "typing": return .typing(try decoder.decode(Typing.self, from: data))
            case "ping": return .ping(requestId: try decoder.decode(PingPayload.self, from: data).requestId)
            case "uploadBegin": return .uploadBegin(try decoder.decode(UploadBegin.self, from: data))
            case "uploadResume": return .uploadResume(try decoder.decode(UploadResume.self, from: data))
            case "uploadEnd": return .uploadEnd(try decoder.decode(UploadReference.self, from: data))
            case "uploadCancel": return .uploadCancel(try decoder.decode(UploadReference.self, from: data))
            case "search": return .search(try decoder.decode(SearchRequest.self, from: data))
            case "setStatus": return .setStatus(try decoder.decode(SetStatus.self, from: data))
            case "assign": return .assign(try decoder.decode(Assign.self, from: data))
            case "note": return .note(try decoder.decode(Note.self, from: data))
            default:
                throw FrameDecodingError(code: .unknownType, message: "unknown frame type \"\(type.prefix(64))\"")
            }
        } catch let error as FrameDecodingError {
            throw error
        } catch let error as DecodingError {
            throw FrameDecodingError(code: .invalidFrame, message: "\(type) frame: " + Self.describe(error))
        } catch {
            throw FrameDecodingError(code: .invalidFrame, message: "\(type) frame could not be read")
        }
    }

    /// The `clientId` or `requestId` of a frame, if it has one, so an error can name what it rejects.
    public func reference(in data: Data) -> String? {
        guard let envelope = try? JSONDecoder().decode(Envelope.self, from: data) else { return nil }
        return envelope.clientId ?? envelope.requestId ?? envelope.uploadId
    }

    public func encode(_ frame: ClientFrame) throws -> Data {
        let encoder = JSONEncoder()
        switch frame {
        case .hello(let hello): return try encoder.encode(Typed(type: "hello", payload: hello))
        case .send(let send): return try encoder.encode(Typed(type: "send", payload: send))
        case .broadcast(let broadcast): return try encoder.encode(Typed(type: "broadcast", payload: broadcast))
        case .history(let request): return try encoder.encode(Typed(type: "history", payload: request))
        case .read(let marker): return try encoder.encode(Typed(type: "read", payload: marker))
        case .typing(let typing): return try encoder.encode(Typed(type: "typing", payload: typing))
        case .ping(let requestId): return try encoder.encode(Typed(type: "ping", payload: PingPayload(requestId: requestId)))
        case .uploadBegin(let value): return try encoder.encode(Typed(type: "uploadBegin", payload: value))
        case .uploadResume(let value): return try encoder.encode(Typed(type: "uploadResume", payload: value))
        case .uploadEnd(let value): return try encoder.encode(Typed(type: "uploadEnd", payload: value))
        case .uploadCancel(let value): return try encoder.encode(Typed(type: "uploadCancel", payload: value))
        case .search(let value): return try encoder.encode(Typed(type: "search", payload: value))
        case .setStatus(let value): return try encoder.encode(Typed(type: "setStatus", payload: value))
        case .assign(let value): return try encoder.encode(Typed(type: "assign", payload: value))
        case .note(let value): return try encoder.encode(Typed(type: "note", payload: value))
        }
    }

    // MARK: Server frames

    public func encode(_ frame: ServerFrame) throws -> Data {
        // The frequent frames are written by FlatJSON; a JSONEncoder is made only for the others.
        func typed<Payload: Encodable>(_ type: String, _ payload: Payload) throws -> Data {
            try JSONEncoder().encode(Typed(type: type, payload: payload))
        }
        switch frame {
        case .welcome(let value): return try typed("welcome", value)
        case .message(let value):
            if let flat = FlatJSON.message(value) { return Data(flat) }
            return try typed("message", value)
        case .ack(let value): return Data(FlatJSON.ack(value))
        case .broadcastAck(let value): return try typed("broadcastAck", value)
        case .history(let value): return try typed("history", value)
        case .synced(let value): return try typed("synced", value)
        case .roster(let value): return Data(FlatJSON.roster(type: "roster", value))
        case .rosterUpdate(let value): return Data(FlatJSON.roster(type: "rosterUpdate", value))
        case .read(let value): return try typed("read", value)
        case .typing(let value): return try typed("typing", value)
        case .presence(let value): return try typed("presence", value)
        case .pong(let requestId): return try typed("pong", PingPayload(requestId: requestId))
        case .error(let value): return try typed("error", value)
        case .uploadReady(let value): return try typed("uploadReady", value)
        case .uploadProgress(let value): return try typed("uploadProgress", value)
        case .uploadDone(let value): return try typed("uploadDone", value)
        case .searchResults(let value): return try typed("searchResults", value)
        case .conversationUpdated(let value): return try typed("conversationUpdated", value)
        case .cannedReplies(let value): return try typed("cannedReplies", value)
        }
    }

    /// Decodes a server frame (clients and tests).
    public func decodeServerFrame(_ data: Data) throws -> ServerFrame {
        let decoder = JSONDecoder()
        let type = try decoder.decode(Envelope.self, from: data).type
        switch type {
        case "welcome": return .welcome(try decoder.decode(Welcome.self, from: data))
        case "message": return .message(try decoder.decode(ChatMessage.self, from: data))
        case "ack": return .ack(try decoder.decode(Ack.self, from: data))
        case "broadcastAck": return .broadcastAck(try decoder.decode(BroadcastAck.self, from: data))
        case "history": return .history(try decoder.decode(HistoryPage.self, from: data))
        case "synced": return .synced(try decoder.decode(Synced.self, from: data))
        case "roster": return .roster(try decoder.decode(RosterPayload.self, from: data).customers)
        case "rosterUpdate": return .rosterUpdate(try decoder.decode(RosterPayload.self, from: data).customers)
        case "read": return .read(try decoder.decode(ReadReceipt.self, from: data))
        case "typing": return .typing(try decoder.decode(TypingNotice.self, from: data))
        case "presence": return .presence(try decoder.decode(Presence.self, from: data))
        case "pong": return .pong(requestId: try decoder.decode(PingPayload.self, from: data).requestId)
        case "error": return .error(try decoder.decode(ErrorFrame.self, from: data))
        case "uploadReady": return .uploadReady(try decoder.decode(UploadReady.self, from: data))
        case "uploadProgress": return .uploadProgress(try decoder.decode(UploadProgress.self, from: data))
        case "uploadDone": return .uploadDone(try decoder.decode(UploadDone.self, from: data))
        case "searchResults": return .searchResults(try decoder.decode(SearchResults.self, from: data))
        case "conversationUpdated": return .conversationUpdated(try decoder.decode(ConversationUpdated.self, from: data))
        case "cannedReplies": return .cannedReplies(try decoder.decode(CannedReplies.self, from: data))
        default:
            throw FrameDecodingError(code: .unknownType, message: "unknown server frame type \(type ?? "(none)")")
        }
    }

    // MARK: Helpers

    private static func describe(_ error: DecodingError) -> String {
        switch error {
        case .keyNotFound(let key, let context):
            let path = (context.codingPath + [key]).map(\.stringValue).joined(separator: ".")
            return "field \"\(path)\" is missing"
        case .typeMismatch(let type, let context):
            return describe(context: context, problem: "must be of type \(typeName(type))")
        case .valueNotFound(let type, let context):
            return describe(context: context, problem: "must be of type \(typeName(type)), not null")
        case .dataCorrupted(let context):
            return describe(context: context, problem: "is invalid")
        @unknown default:
            return "invalid frame"
        }
    }

    private static func describe(context: DecodingError.Context, problem: String) -> String {
        let path = context.codingPath.map(\.stringValue).joined(separator: ".")
        return path.isEmpty ? "the frame \(problem)" : "field \"\(path)\" \(problem)"
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "string"
        case is Int.Type, is Int64.Type, is Double.Type: "number"
        case is Bool.Type: "boolean"
        default: "\(type)".lowercased()
        }
    }
}

private struct RosterPayload: Codable {
    var customers: [RosterEntry]
}

/// Writes `{"type": ..., <payload's fields>}` by letting the payload encode into the same keyed container.
private struct Typed<Payload: Encodable>: Encodable {
    var type: String
    var payload: Payload

    private enum Key: String, CodingKey { case type }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(type, forKey: .type)
        try payload.encode(to: encoder)
    }
}
