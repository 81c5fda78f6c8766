// swift-tools-version: 6.1
import PackageDescription

// Layers, each depending only on the ones above it:
//   CSystem (C) → Reactor → TLS / HTTP / WebSocket → Tunnel → RemoteDialer → executables
let package = Package(
    name: "RemoteDialer",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Reactor", targets: ["Reactor"]),
        .library(name: "Tunnel", targets: ["Tunnel"]),
    ],
    dependencies: [],
    targets: [
        .target(name: "CSystem"),
        .target(name: "Reactor", dependencies: ["CSystem"]),
        .executableTarget(name: "reactor-echo-demo", dependencies: ["Reactor"]),
        .testTarget(name: "ReactorTests", dependencies: ["Reactor"]),
        .target(name: "Tunnel", dependencies: ["Reactor"]),
        .testTarget(name: "TunnelTests", dependencies: ["Tunnel"]),
    ],
    swiftLanguageModes: [.v6]
)
