import ArgumentParser
import Thumbnailer

extension ChatAdmin {
    struct Media: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "media",
            abstract: "Media store tools.",
            subcommands: [Thumbnail.self]
        )
    }
}

extension ChatAdmin.Media {
    /// The server's thumbnailer on one file, for debugging and whole-process comparisons with other tools.
    struct Thumbnail: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a thumbnail of one JPEG or PNG file exactly as the server would.")

        @Argument(help: "Input image (JPEG or PNG).")
        var input: String

        @Argument(help: "Output file (JPEG for opaque images, PNG for images with alpha).")
        var output: String

        @Option(help: "cropN (centred NxN crop) or fitN (longest side N), e.g. crop96, fit320, fit800.")
        var size: String = "fit320"

        func run() throws {
            do {
                let spec = try ThumbnailSpec(parsing: size)
                _ = try Thumbnailer().makeThumbnail(inputPath: input, outputPath: output, spec: spec)
            } catch {
                throw AdminFailure(error.description)
            }
        }
    }
}
