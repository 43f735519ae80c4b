import ChatProtocol
import Foundation
import HTTPTypes
import Hummingbird
import MediaStore
import NIOCore

/// A media endpoint's refusal: its status and the JSON body of a WebSocket `error` frame with the same code and
/// message.
struct MediaHTTPError: HTTPResponseError {
    let status: HTTPResponse.Status
    let code: ErrorCode
    let message: String
    var headers: HTTPFields = [:]

    init(status: HTTPResponse.Status, code: ErrorCode, message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    /// An upload's failure, with the status `POST /media` answers it with.
    init(_ error: MediaError) {
        self.init(status: HTTPResponse.Status(code: Self.statusCode(of: error)), code: error.code, message: error.description)
    }

    static func statusCode(of error: MediaError) -> Int {
        switch error {
        case .tooLarge: 413
        case .tooManyUploads, .dailyAllowance: 429
        case .unknownUpload: 404
        case .moreThanDeclared, .hashMismatch, .incomplete, .empty, .invalid: 400
        case .storage(_, let errno): MediaError.isDiskFull(errno) ? 507 : 500
        case .database, .sniffer: 500
        case .missing: 410
        case .storeUnavailable: 503
        case .uncleanableImage: 422
        }
    }

    /// Missing and forbidden alike, so hashes cannot be probed.
    static let notFound = MediaHTTPError(status: .notFound, code: .unknownAttachment, message: "no such media, or not yours to see")

    /// The user may see this blob but an operator removed its bytes (pruned or quarantined).
    static let gone = MediaHTTPError(status: .gone, code: .attachmentExpired,
                                     message: "this attachment has expired: its file was removed from the server")

    /// The blob storage (an object store) cannot be read right now.
    static let storageUnavailable = MediaHTTPError(status: .serviceUnavailable, code: .storeFailed,
                                                   message: "the media store cannot be reached right now; try again shortly")

    /// `POST /media` when the store failed at the end: the upload was discarded (HTTP has no resume).
    static let uploadNotKept = MediaHTTPError(status: .serviceUnavailable, code: .storeFailed,
                                              message: "the media store cannot take the file right now; it was not kept: send it again shortly")

    static var unauthorized: MediaHTTPError {
        var error = MediaHTTPError(status: .unauthorized, code: .forbidden,
                                   message: "a valid token is needed: send 'Authorization: Bearer <token>'")
        error.headers[.wwwAuthenticate] = "Bearer"
        return error
    }

    var response: Response {
        // Sorted keys: equal errors are equal bytes, so a forbidden blob's 404 is indistinguishable from a missing one.
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let body = (try? encoder.encode(ErrorFrame(code: code, message: message))) ?? Data()
        var fields: HTTPFields = [.contentType: "application/json"]
        fields.append(contentsOf: headers)
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        response
    }
}
