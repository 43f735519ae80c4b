// chat-clean-image IN OUT [--runs N]: removes private metadata from one JPEG or PNG as the server does at upload,
// and with --runs times the cleaning (plan and write, from a mapped file) for Benchmarks/privacy.sh.
import MediaPrivacy
#if canImport(Glibc)
import Glibc
#endif

func fail(_ message: String) -> Never {
    let line = Array("chat-clean-image: \(message)\n".utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    exit(1)
}

var arguments = Array(CommandLine.arguments.dropFirst())
var runs = 0
if let flag = arguments.firstIndex(of: "--runs") {
    guard flag + 1 < arguments.count, let count = Int(arguments[flag + 1]), count > 0 else { fail("--runs needs a positive count") }
    runs = count
    arguments.removeSubrange(flag...(flag + 1))
}
guard arguments.count == 2 else { fail("usage: chat-clean-image IN OUT [--runs N]") }
let (inputPath, outputPath) = (arguments[0], arguments[1])

let fd = open(inputPath, O_RDONLY | O_CLOEXEC)
guard fd >= 0 else { fail("cannot open \(inputPath): \(String(cString: strerror(errno)))") }
var status = stat()
guard fstat(fd, &status) == 0, status.st_size > 0 else { fail("cannot read the size of \(inputPath)") }
let size = Int(status.st_size)
guard let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), mapped != MAP_FAILED else { fail("cannot map \(inputPath)") }
let input = UnsafeRawBufferPointer(start: mapped, count: size)
let format: MetadataCleaner.Format = input.starts(with: [0x89, 0x50, 0x4E, 0x47]) ? .png : .jpeg

func clean(_ input: UnsafeRawBufferPointer, format: MetadataCleaner.Format, inputPath: String, outputPath: String) -> CleaningPlan {
    let plan: CleaningPlan
    do { plan = try MetadataCleaner.plan(input, format: format) } catch { fail("\(inputPath): \(error)") }
    // A new file each time, as the server writes one per upload (truncating an old one costs more).
    unlink(outputPath)
    let out = open(outputPath, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o644)
    guard out >= 0 else { fail("cannot create \(outputPath): \(String(cString: strerror(errno)))") }
    plan.write(from: input) { (bytes: UnsafeRawBufferPointer) in
        guard let base = bytes.baseAddress else { return }
        var offset = 0
        while offset < bytes.count {
            let written = write(out, base + offset, bytes.count - offset)
            guard written > 0 else { fail("cannot write \(outputPath): \(String(cString: strerror(errno)))") }
            offset += written
        }
    }
    close(out)
    return plan
}

let plan = clean(input, format: format, inputPath: inputPath, outputPath: outputPath)
print("\(inputPath): \(size) -> \(plan.outputSize) bytes; removed: \(plan.removed.map(\.rawValue).joined(separator: ", ")); orientation \(plan.orientation)")
if runs > 0 {
    let clock = ContinuousClock()
    var planTimes: [Duration] = [], totalTimes: [Duration] = []
    for _ in 0..<runs {
        let start = clock.now
        _ = try? MetadataCleaner.plan(input, format: format)
        planTimes.append(clock.now - start)
        let again = clock.now
        _ = clean(input, format: format, inputPath: inputPath, outputPath: outputPath)
        totalTimes.append(clock.now - again)
    }
    func median(_ times: [Duration]) -> String {
        let (seconds, attoseconds) = times.sorted()[times.count / 2].components
        let microseconds = Int(seconds) * 1_000_000 + Int(attoseconds / 1_000_000_000_000)
        let fraction = String(microseconds % 1000)
        return "\(microseconds / 1000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction) ms"
    }
    print("median of \(runs) runs: parse \(median(planTimes)), parse and write \(median(totalTimes))")
}
