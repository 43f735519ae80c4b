import Crypto
import Foundation
import NIOCore
import ObjectStorage
import TestProcesses
import Testing

extension MotoServer {
    /// The suite's moto, set by the `.motoServer` trait.
    @TaskLocal static var current: MotoServer?
}

/// Starts moto once around a whole suite and stops it afterwards, however the suite's tests end.
struct MotoServerTrait: SuiteTrait, TestScoping {
    func provideScope(for test: Test, testCase: Test.Case?,
                      performing function: @Sendable () async throws -> Void) async throws {
        let moto = try await MotoServer.start()
        defer { moto.stop() }
        try await MotoServer.$current.withValue(moto) { try await function() }
    }
}

extension Trait where Self == MotoServerTrait {
    static var motoServer: Self { MotoServerTrait() }
}

/// A file of the given bytes in the temporary directory.
struct TemporaryFile {
    let path: String

    init(_ bytes: [UInt8]) throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("s3-test-\(UUID().uuidString)").path
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
            throw TestFailure("cannot create \(path)")
        }
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

func randomBytes(_ count: Int) -> [UInt8] {
    var generator = SystemRandomNumberGenerator()
    var bytes = [UInt8](repeating: 0, count: count)
    var index = 0
    while index < count {
        var word = generator.next() as UInt64
        for _ in 0..<8 where index < count {
            bytes[index] = UInt8(truncatingIfNeeded: word)
            word >>= 8
            index += 1
        }
    }
    return bytes
}

func hex(_ digest: some Sequence<UInt8>) -> String { digest.map { String(format: "%02x", $0) }.joined() }

func sha256(_ bytes: [UInt8]) -> String { hex(SHA256.hash(data: bytes)) }

func collect(_ body: ObjectBody) async throws -> [UInt8] {
    var bytes: [UInt8] = []
    for try await chunk in body { bytes += chunk.readableBytesView }
    return bytes
}

/// What an operation of the client ended with, for tests that look at the error's case. (The closure's thrown type
/// is not inferred without the FullTypedThrows feature, so any other error is turned into one that says so.)
func outcome<T>(_ body: () async throws -> T) async -> Result<T, ObjectStorageError> {
    do {
        return .success(try await body())
    } catch let error as ObjectStorageError {
        return .failure(error)
    } catch {
        return .failure(.invalidResponse(operation: "test", detail: "not an ObjectStorageError: \(error)"))
    }
}
