import ArgumentParser
import Thumbnailer

/// `chat-thumbnail IN OUT --size fit320`: the server's thumbnailer on one file, for debugging an image a user
/// reports and for whole-process comparisons with vipsthumbnail, ImageMagick and djpeg. An executable of its own,
/// not a `chat-admin` subcommand, because it links nothing but the thumbnailer: no Foundation, database or network
/// stack to load, so it starts in a few milliseconds, as the tools it is compared with do.
@main
struct ChatThumbnail: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat-thumbnail",
        abstract: "Make a thumbnail of one JPEG or PNG file exactly as the chat server would.",
        discussion: "Exit codes: 0 written, 1 the image was refused or could not be read or written (one line on stderr says why), 64 bad usage.")

    @Argument(help: "Input image (JPEG or PNG).")
    var input: String

    @Argument(help: "Output file (JPEG for opaque images, PNG for images with alpha).")
    var output: String

    @Option(help: "cropN (centred NxN crop) or fitN (longest side N), e.g. crop96, fit320, fit800.")
    var size: String = "fit320"

    func run() throws {
        let spec: ThumbnailSpec
        do { spec = try ThumbnailSpec(parsing: size) } catch { throw ValidationError(error.description) }
        do {
            _ = try Thumbnailer().makeThumbnail(inputPath: input, outputPath: output, spec: spec)
        } catch {
            throw ThumbnailFailure(description: "\(input): \(error.description)")
        }
    }
}

/// One line on stderr, exit code 1.
struct ThumbnailFailure: Error, CustomStringConvertible {
    var description: String
}
