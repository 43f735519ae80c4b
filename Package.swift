// swift-tools-version:6.2
import PackageDescription

let package = Package(
    name: "support-chat",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "chat-server", targets: ["ChatServerMain"]),
        .executable(name: "chat-admin", targets: ["ChatAdmin"]),
        .executable(name: "chat-bench", targets: ["ChatBench"]),
        .executable(name: "chat-client", targets: ["ChatClientApp"]),
        .executable(name: "chat-thumbnail", targets: ["ChatThumbnail"]),
        .executable(name: "chat-clean-image", targets: ["ChatCleanImage"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: ["FullFoundation"]),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        // Shared pixel type of the thumbnailer and the terminal renderers.
        .target(name: "ImageBuffer"),
        // libjpeg-turbo, libpng, giflib, libwebp and libheif wrappers: setjmp/longjmp stays in C, nothing printed,
        // errors come back as codes.
        .target(
            name: "CImageCodecs",
            linkerSettings: [
                .linkedLibrary("jpeg"), .linkedLibrary("png"), .linkedLibrary("gif"), .linkedLibrary("webp"),
                .linkedLibrary("webpdemux"), .linkedLibrary("heif"),
            ]
        ),
        // Thumbnails: probe, decode at reduced scale, EXIF orientation, resize, encode. No Foundation.
        .target(name: "Thumbnailer", dependencies: ["ImageBuffer", "CImageCodecs"]),
        // Terminal image previews: our sixel encoder, Unicode half blocks, ASCII, terminal capability probe, layout.
        .target(name: "TerminalGraphics", dependencies: ["ImageBuffer"]),

        // Wire protocol shared by server and clients: frame types, codes, versions. Foundation only.
        .target(name: "ChatProtocol"),

        // Embeds schema/*.sql into the store at build time, so the binary carries its migrations.
        .executableTarget(name: "EmbedSchemaTool", path: "Sources/EmbedSchemaTool"),
        .plugin(name: "EmbedSchema", capability: .buildTool(), dependencies: ["EmbedSchemaTool"]),

        // Durable state: tokens, conversations, messages, read markers (GRDB on the system SQLite, WAL).
        .target(
            name: "ChatStore",
            dependencies: [
                "ChatProtocol",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            plugins: ["EmbedSchema"]
        ),

        // The same stores on PostgreSQL, for several server nodes (postgres-nio with its connection pool), and the
        // notifications that carry fan-out between nodes.
        .target(
            name: "ChatStorePostgres",
            dependencies: [
                "ChatProtocol", "ChatStore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            plugins: ["EmbedSchema"]
        ),

        // Private metadata (location, device details) removed from JPEG and PNG by rewriting segments, never
        // re-encoding. Pure Swift, no dependencies.
        .target(name: "MediaPrivacy"),
        // Audio and video playing time from their containers' headers (MP4/MOV, Matroska/WebM, MP3, Ogg, WAV), no
        // decoding. Pure Swift, no dependencies.
        .target(name: "MediaDuration"),

        // libmagic (system library) for sniffing uploaded files' MIME types.
        .systemLibrary(name: "CMagic", path: "Sources/CMagic"),
        // Content-addressed media store: streamed, hashed uploads, libmagic sniffing, thumbnails, limits.
        .target(
            name: "MediaStore",
            dependencies: [
                "ChatProtocol", "ChatStore", "CMagic", "MediaDuration", "MediaPrivacy", "Thumbnailer",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "_NIOFileSystem", package: "swift-nio"),
            ]
        ),

        // S3-compatible object storage client (AWS S3, MinIO, Ceph RGW, Garage): SigV4 by hand, streamed bodies,
        // multipart uploads, bounded retries. The media store's BlobStorage adapter sits on it.
        .target(
            name: "ObjectStorage",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "_NIOFileSystem", package: "swift-nio"),
            ]
        ),

        // Media blobs in an S3-compatible bucket: the BlobStorage on the ObjectStorage client, so that MediaStore does not
        // import the HTTP client.
        .target(
            name: "MediaObjectStore",
            dependencies: [
                "MediaStore", "ObjectStorage",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "_NIOFileSystem", package: "swift-nio"),
            ]
        ),

        // Media store maintenance while the server runs: stats, verify (re-hash), prune, gc, strip-metadata. Used by chat-admin.
        .target(
            name: "MediaMaintenance",
            dependencies: [
                "ChatProtocol", "ChatStore", "MediaPrivacy", "MediaStore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // The WebSocket chat server: auth, delivery hub, roster, HTTP endpoints, metrics.
        .target(
            name: "ChatServer",
            dependencies: [
                "ChatProtocol", "ChatStore", "ChatStorePostgres", "MediaStore", "MediaObjectStore", "ObjectStorage",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
            ]
        ),
        // Client side of the protocol: a WebSocket connection with frame encoding, used by chat-client, tests and
        // the load generator.
        .target(
            name: "ChatClient",
            dependencies: [
                "ChatProtocol",
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "ChatServerMain",
            dependencies: [
                "ChatServer", "MediaStore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "ChatAdmin",
            dependencies: [
                "ChatStore", "ChatStorePostgres", "MediaMaintenance", "MediaStore", "MediaObjectStore", "ObjectStorage",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // The thumbnailer on one file from the shell. It links nothing else, not even ArgumentParser (which brings
        // Foundation), and the Swift runtime statically, so it starts in about 2 ms like the tools it is compared
        // with (10 ms with ArgumentParser and a dynamic runtime).
        .executableTarget(
            name: "ChatThumbnail",
            dependencies: ["Thumbnailer"],
            linkerSettings: [.unsafeFlags(["-static-stdlib"])]
        ),
        // Metadata removal on one file from the shell, and its timing (Benchmarks/privacy.sh). Links MediaPrivacy only.
        .executableTarget(name: "ChatCleanImage", dependencies: ["MediaPrivacy"]),
        // Load generator (not part of the tests): see BENCHMARKS.md.
        .executableTarget(
            name: "ChatBench",
            dependencies: [
                "ChatProtocol", "ChatStore", "ChatStorePostgres", "ChatTerminalUI", "ImageBuffer", "TerminalGraphics", "Thumbnailer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ]
        ),
        // Test helpers shared by the test targets: running external programs off the cooperative pool.
        .target(name: "TestProcesses", path: "Tests/TestProcesses"),
        // The in-process chat server fixture of the server and media tests.
        .target(
            name: "ChatServerFixture",
            dependencies: [
                "ChatServer", "ChatStore", "ChatProtocol", "ChatClient", "TestProcesses",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Tests/ChatServerFixture"
        ),
        .testTarget(
            name: "ChatServerTests",
            dependencies: [
                "ChatServer", "ChatServerFixture", "ChatStore", "ChatStorePostgres", "ChatProtocol", "ChatClient", "TestProcesses",
                "MediaStore", "MediaMaintenance", "MediaObjectStore", "ObjectStorage",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "MediaTests",
            dependencies: [
                "ChatServer", "ChatServerFixture", "ChatStore", "ChatProtocol", "ChatClient", "MediaStore", "MediaMaintenance",
                "MediaObjectStore", "ObjectStorage", "ChatStorePostgres", "Thumbnailer", "TestProcesses", "ImageFixtures",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(
            name: "ObjectStorageTests",
            dependencies: [
                "ObjectStorage", "TestProcesses",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            exclude: ["SigV4TestSuite"]
        ),
        // Images with metadata written byte by byte, and the shared corpus: for the privacy and media tests.
        .target(name: "ImageFixtures", path: "Tests/ImageFixtures"),
        .testTarget(name: "MediaDurationTests", dependencies: ["MediaDuration", "TestProcesses"]),
        .testTarget(name: "MediaPrivacyTests", dependencies: ["MediaPrivacy", "ImageFixtures", "Thumbnailer", "ImageBuffer"]),
        .testTarget(name: "ThumbnailerTests", dependencies: ["Thumbnailer", "ImageBuffer", "CImageCodecs", "TestProcesses"]),
        .testTarget(name: "TerminalGraphicsTests", dependencies: ["TerminalGraphics", "ImageBuffer", "TestProcesses"]),
        // Terminal client: chat state machine, line editor, screen layout, raw mode (testable library) and the thin
        // chat-client executable.
        .target(
            name: "ChatTerminalUI",
            dependencies: [
                "ChatClient", "ChatProtocol", "Thumbnailer", "ImageBuffer", "TerminalGraphics",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "ChatClientApp",
            dependencies: [
                "ChatTerminalUI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "ChatTerminalUITests",
            dependencies: [
                "ChatTerminalUI", "ChatProtocol", "ChatClient", "ChatStore", "ImageBuffer", "TerminalGraphics", "Thumbnailer", "TestProcesses",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
