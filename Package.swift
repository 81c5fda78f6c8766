// swift-tools-version: 6.1
import PackageDescription

// Layers, each depending only on the ones above it:
//   CSystem (C) → Reactor → TLS (over CTLS) / HTTP → WebSocket → Tunnel → RemoteDialer → executables
//   Digest (over CDigest: SHA-1, base64, randomness) stands apart; WebSocket and TLS use it.

let package = Package(
    name: "RemoteDialer",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Reactor", targets: ["Reactor"]),
        .library(name: "TLS", targets: ["TLS"]),
        .library(name: "HTTP", targets: ["HTTP"]),
        .library(name: "WebSocket", targets: ["WebSocket"]),
        .library(name: "Tunnel", targets: ["Tunnel"]),
        .library(name: "RemoteDialer", targets: ["RemoteDialer"]),
        .executable(name: "remotedialer-server", targets: ["remotedialer-server"]),
        .executable(name: "remotedialer-client", targets: ["remotedialer-client"]),
        .executable(name: "remotedialer-dummy", targets: ["remotedialer-dummy"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.4.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
    ],
    targets: [
        .target(name: "CSystem"),
        .target(name: "Reactor", dependencies: ["CSystem"]),
        .executableTarget(name: "reactor-echo-demo", dependencies: ["Reactor"]),
        .target(name: "TestSupport", dependencies: ["Reactor"], path: "Tests/Support"),
        .testTarget(name: "ReactorTests", dependencies: ["Reactor", "TestSupport"]),
        // OpenSSL is dlopen()ed on first use (Sources/CTLS/openssl_lazy.c), so TLS-less processes never load it.
        .target(name: "CTLS", linkerSettings: [.linkedLibrary("dl")]),
        .target(name: "CDigest"),
        .target(name: "Digest", dependencies: ["CDigest"]),
        .target(name: "TLS", dependencies: ["Reactor", "CTLS", "Digest"]),
        .testTarget(name: "TLSTests", dependencies: ["TestSupport", "TLS", "Digest"]),
        .target(name: "HTTP", dependencies: ["Reactor"]),
        .testTarget(name: "HTTPTests", dependencies: ["TestSupport", "HTTP"]),
        .target(name: "WebSocket", dependencies: ["Reactor", "HTTP", "Digest"]),
        .testTarget(name: "WebSocketTests", dependencies: ["TestSupport", "WebSocket"], exclude: ["Peers"]),
        .target(name: "Tunnel", dependencies: ["Reactor", "WebSocket", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "TunnelTests", dependencies: ["TestSupport", "Tunnel", "HTTP", "WebSocket"]),
        .target(name: "RemoteDialer", dependencies: ["Tunnel", "HTTP", "WebSocket", "TLS", "Digest", .product(name: "Logging", package: "swift-log"),
                                                    .product(name: "CoreMetrics", package: "swift-metrics")]),
        .target(name: "ProgramSupport", dependencies: ["CSystem", "HTTP",
                                                      .product(name: "Logging", package: "swift-log")]),
        .executableTarget(name: "remotedialer-server", dependencies: [
            "RemoteDialer", "ProgramSupport", "TLS",
            .product(name: "Prometheus", package: "swift-prometheus"), .product(name: "CoreMetrics", package: "swift-metrics")]),
        .executableTarget(name: "remotedialer-client", dependencies: [
            "RemoteDialer", "ProgramSupport", "TLS"]),
        .executableTarget(name: "remotedialer-dummy", dependencies: [
            "HTTP", "ProgramSupport"]),
        .testTarget(name: "ProgramSupportTests", dependencies: ["ProgramSupport"]),
        .testTarget(name: "RemoteDialerTests", dependencies: ["TestSupport", "RemoteDialer", "Tunnel", "TLS", "Digest"]),
    ],
    swiftLanguageModes: [.v6]
)
