import Foundation
import Glibc
import Testing

/// `openssl s_server -www` on loopback with the test PKI's `server.pem` (a TLS peer we did not
/// write, behind a tunnel client); stopped on deinit.
final class OpenSSLTarget {
    let port = freePort()
    private let process = Process()

    init() throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = ["s_server", "-accept", "127.0.0.1:\(port)", "-cert", TLSEndToEndTests.file("server.pem"),
                             "-key", TLSEndToEndTests.file("server.key"), "-www"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        try #require(waitUntil(seconds: 10) { canConnect(port: port) }, "openssl s_server did not start")
    }

    deinit {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}
