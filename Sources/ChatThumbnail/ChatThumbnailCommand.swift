#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Thumbnailer

/// `chat-thumbnail IN OUT [--size fit320 ...]`: the server's thumbnailer on one file, for debugging an image a user
/// reports and for whole-process comparisons with vipsthumbnail, ImageMagick and djpeg.
///
/// An executable of its own, not a `chat-admin` subcommand, linked to the Swift runtime statically (Package.swift),
/// and its few arguments are parsed here rather than with ArgumentParser: ArgumentParser loads FoundationEssentials
/// and reflects over the command at start-up, which cost more than all of the resizing (BENCHMARKS.md). So this
/// process starts about as fast as the C tools it is compared with.
@main
enum ChatThumbnail {
    static let usage = """
        USAGE: chat-thumbnail <input> <output> [--size <size> ...] [--one-thread]

        Make a thumbnail of one JPEG, PNG, GIF, WebP or HEIC/HEIF file exactly as the chat server would
        (of an animated GIF or WebP, the first frame).

        ARGUMENTS:
          <input>        Input image (JPEG, PNG, GIF, WebP, HEIC/HEIF).
          <output>       Output file (JPEG for opaque images, PNG for images with alpha), written atomically.
                         With several sizes it must contain {size}, replaced by each size's name.

        OPTIONS:
          --size <size>  cropN (centred NxN crop) or fitN (longest side N), e.g. crop96, fit320, fit800.
                         Repeat it for several sizes from one decode, as the server makes its three.
                         (default: fit320)
          --one-thread   Resize on the decoding thread instead of beside it.
          -h, --help     Show this help.

        Example: chat-thumbnail photo.jpg 'thumb-{size}.jpg' --size crop96 --size fit320 --size fit800

        Exit codes: 0 written, 1 the image was refused or could not be read or written (one line on stderr says
        why), 64 bad usage.

        """

    static func main() {
        switch Invocation.parse(Array(CommandLine.arguments.dropFirst())) {
        case .help:
            writeOut(usage, to: STDOUT_FILENO)
            exit(0)
        case .usageError(let message):
            writeOut("Error: \(message)\n\(usage)", to: STDERR_FILENO)
            exit(64)
        case .run(let invocation):
            do {
                let outputs = invocation.specs.map { spec in
                    (spec, invocation.output.replacing("{size}", with: spec.description))
                }
                try Thumbnailer(pipelined: !invocation.oneThread).makeThumbnails(inputPath: invocation.input,
                                                                                 outputs: outputs)
            } catch {
                writeOut("Error: \(invocation.input): \(error.description)\n", to: STDERR_FILENO)
                exit(1)
            }
        }
    }

    /// Whole text with write(2): nothing buffered is lost to exit().
    static func writeOut(_ text: String, to fd: Int32) {
        var text = text
        text.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count, let base = bytes.baseAddress {
                let n = write(fd, base + offset, bytes.count - offset)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
                offset += n
            }
        }
    }
}

/// The parsed command line.
struct Invocation {
    var input: String
    /// May contain `{size}`; must when there are several sizes.
    var output: String
    var specs: [ThumbnailSpec]
    var oneThread = false

    enum Parsed {
        case run(Invocation)
        case help
        case usageError(String)
    }

    static func parse(_ arguments: [String]) -> Parsed {
        var positional: [String] = []
        var sizeTexts: [String] = []
        var oneThread = false
        var index = 0
        var onlyPositional = false
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if onlyPositional || !argument.hasPrefix("-") || argument == "-" {
                positional.append(argument)
                continue
            }
            switch argument {
            case "--":
                onlyPositional = true
            case "-h", "--help":
                return .help
            case "--size":
                guard index < arguments.count else { return .usageError("missing value for '--size <size>'") }
                sizeTexts.append(arguments[index])
                index += 1
            case "--one-thread":
                oneThread = true
            default:
                if argument.hasPrefix("--size=") {
                    sizeTexts.append(String(argument.dropFirst("--size=".count)))
                } else {
                    return .usageError("unknown option '\(argument)'")
                }
            }
        }
        guard positional.count >= 2 else {
            return .usageError(positional.isEmpty ? "missing <input> and <output>" : "missing <output>")
        }
        guard positional.count == 2 else { return .usageError("unexpected argument '\(positional[2])'") }
        var specs: [ThumbnailSpec] = []
        for text in sizeTexts.isEmpty ? ["fit320"] : sizeTexts {
            guard let spec = ThumbnailSpec(text) else {
                return .usageError("invalid --size '\(text)': expected cropN or fitN, N in 1...\(ThumbnailSpec.maxSize)")
            }
            guard !specs.contains(spec) else { return .usageError("--size \(text) given twice") }
            specs.append(spec)
        }
        let output = positional[1]
        guard specs.count == 1 || output.contains("{size}") else {
            return .usageError("with several sizes, <output> must contain {size}, e.g. 'thumb-{size}.jpg'")
        }
        return .run(Invocation(input: positional[0], output: output, specs: specs, oneThread: oneThread))
    }
}
