// swift-tools-version: 6.1
import PackageDescription

// Benchmarks live in their own package so the main package's test build stays lean.
let package = Package(
    name: "RemoteDialerBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: "RemoteDialer", path: "..")],
    targets: [
        .executableTarget(
            name: "reactor-relay-bench",
            dependencies: [.product(name: "Reactor", package: "RemoteDialer"), .product(name: "TLS", package: "RemoteDialer")]
        ),
        .executableTarget(
            name: "frame-parser-bench",
            dependencies: [.product(name: "Reactor", package: "RemoteDialer"), .product(name: "WebSocket", package: "RemoteDialer")]
        ),
        // libFuzzer targets: build with `swift build --sanitize=fuzzer` (Scripts/fuzz.sh).
        .executableTarget(
            name: "fuzz-frame-parser",
            dependencies: [.product(name: "Reactor", package: "RemoteDialer"), .product(name: "WebSocket", package: "RemoteDialer")],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        ),
        .executableTarget(
            name: "fuzz-http-head",
            dependencies: [.product(name: "Reactor", package: "RemoteDialer"), .product(name: "HTTP", package: "RemoteDialer")],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        ),
        // What the fuzz targets share (in-memory streams).
        .target(name: "FuzzSupport", dependencies: [.product(name: "Reactor", package: "RemoteDialer")]),
        .executableTarget(
            name: "fuzz-server",
            dependencies: ["FuzzSupport", .product(name: "Reactor", package: "RemoteDialer"), .product(name: "HTTP", package: "RemoteDialer"),
                           .product(name: "RemoteDialer", package: "RemoteDialer"), .product(name: "Tunnel", package: "RemoteDialer")],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        ),
        .executableTarget(
            name: "fuzz-session",
            dependencies: ["FuzzSupport", .product(name: "Reactor", package: "RemoteDialer"), .product(name: "Tunnel", package: "RemoteDialer")],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        ),
        .executableTarget(
            name: "directory-bench",
            dependencies: [.product(name: "RemoteDialer", package: "RemoteDialer")]
        ),
        .executableTarget(
            name: "tunnel-bench",
            dependencies: [.product(name: "Reactor", package: "RemoteDialer"), .product(name: "RemoteDialer", package: "RemoteDialer"),
                           .product(name: "Tunnel", package: "RemoteDialer")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
