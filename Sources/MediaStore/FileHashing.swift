import Crypto
#if canImport(Glibc)
import Glibc
#endif

/// SHA-256 of files already on disk: resuming an upload re-hashes its partial file, `media verify` re-hashes blobs.
public enum FileHashing {
    /// Feeds `fd` from offset 0 to its end into `hasher` in `buffer`-sized reads. Returns the byte count, or the
    /// errno of a failed read.
    public static func update(_ hasher: inout SHA256, from fd: Int32, buffer: inout [UInt8]) -> Result<Int, POSIXErrno> {
        var total = 0
        while true {
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(total)) }
            if n < 0 {
                if errno == EINTR { continue }
                return .failure(POSIXErrno(errno))
            }
            if n == 0 { return .success(total) }
            buffer.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            total += n
        }
    }

    /// Lowercase hex, as blobs are named.
    public static func hex(_ digest: SHA256.Digest) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(64)
        for byte in digest {
            bytes.append(digits[Int(byte >> 4)])
            bytes.append(digits[Int(byte & 0xF)])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// An errno value as an `Error`.
public struct POSIXErrno: Error, Sendable, Equatable {
    public let code: Int32
    public init(_ code: Int32) { self.code = code }
}
