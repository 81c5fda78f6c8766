// swift-tools-version: 6.1
import PackageDescription

// Layers, each depending only on the ones above it:
//   CSystem (C) → Reactor → TLS (over CTLS) / HTTP → WebSocket → Tunnel → RemoteDialer → executables
let package = Package(
    name: "RemoteDialer",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Reactor", targets: ["Reactor"]),
        .library(name: "TLS", targets: ["TLS"]),
        .library(name: "HTTP", targets: ["HTTP"]),
        .library(name: "WebSocket", targets: ["WebSocket"]),
        .library(name: "Tunnel", targets: ["Tunnel"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        .target(name: "CSystem"),
        .target(name: "Reactor", dependencies: ["CSystem"]),
        .executableTarget(name: "reactor-echo-demo", dependencies: ["Reactor"]),
        .testTarget(name: "ReactorTests", dependencies: ["Reactor"]),
        .target(name: "CTLS", linkerSettings: [.linkedLibrary("ssl"), .linkedLibrary("crypto")]),
        .target(name: "TLS", dependencies: ["Reactor", "CTLS"]),
        .testTarget(name: "TLSTests", dependencies: ["TLS"]),
        .target(name: "HTTP", dependencies: ["Reactor"]),
        .testTarget(name: "HTTPTests", dependencies: ["HTTP"]),
        .target(name: "WebSocket", dependencies: ["Reactor", "HTTP", "TLS"]),
        .testTarget(name: "WebSocketTests", dependencies: ["WebSocket"]),
        .target(name: "Tunnel", dependencies: ["Reactor", "WebSocket", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "TunnelTests", dependencies: ["Tunnel", "HTTP", "WebSocket"]),
    ],
    swiftLanguageModes: [.v6]
)
