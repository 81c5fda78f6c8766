import Foundation
import Glibc
import Reactor
import Testing
import TLS
import TestSupport


/// Sends `total` pattern bytes, reads the echo and checks it; reports the outcome once.
final class EchoVerifier: StreamHandler {
    let total: Int
    var sent = 0
    var received = 0
    var intact = true
    let done: (Result<Int, any Error>) -> Void
    var finished = false
    static let chunk: [UInt8] = (0..<(64 << 10)).map { UInt8($0 % 251) }

    init(total: Int, done: @escaping (Result<Int, any Error>) -> Void) {
        self.total = total
        self.done = done
    }

    func pump(_ stream: any ByteStream) {
        while sent < total && stream.isWritable {
            let offset = sent % 251
            let count = min(total - sent, Self.chunk.count - 251)
            Self.chunk.withUnsafeBytes { _ = stream.write(UnsafeRawBufferPointer(rebasing: $0[offset..<(offset + count)])) }
            sent += count
        }
    }

    func streamDidRead(_ stream: any ByteStream, _ buffer: inout RingBuffer) {
        buffer.withReadableRegions { a, b in
            for region in [a, b] {
                for (index, byte) in region.enumerated() where byte != UInt8((received + index) % 251) { intact = false; break }
                received += region.count
            }
        }
        buffer.consume(buffer.readableBytes)
        if received >= total { finish(intact && received == total ? .success(received) : .failure(TLSError("echo corrupted"))); stream.close() }
    }
    func streamWritabilityDidChange(_ stream: any ByteStream, isWritable: Bool) { if isWritable { pump(stream) } }
    func streamDidClose(_ stream: any ByteStream, error: (any Error)?) { finish(.failure(error ?? TLSError("closed early"))) }
    func finish(_ result: Result<Int, any Error>) {
        guard !finished else { return }
        finished = true
        done(result)
    }
}

final class Box<Value>: @unchecked Sendable {  // written before the semaphore signals, read after
    var value: Value?
    let ready = DispatchSemaphore(value: 0)
    func set(_ value: Value) { self.value = value; ready.signal() }
    func wait(_ seconds: Double = 60) -> Value? { ready.wait(timeout: .now() + seconds) == .success ? value : nil }
}

@Suite(.serialized)
final class TLSStreamTests {
    let certificates = TestCertificates.shared
    let group: ReactorGroup
    let loop: EventLoop
    var listeners: [Listener] = []

    init() throws {
        group = try ReactorGroup(loopCount: 1, name: "tls")
        loop = group.next()
    }

    deinit { group.shutdown() }

    /// A TLS echo server on our reactor; returns its port and the errors its connections ended with.
    func startEchoServer(certificate: String? = nil) throws -> (UInt16, Box<String>) {
        let context = try TLSContext(.server(certificateChainFile: certificate ?? certificates.serverCertificate, privateKeyFile: certificates.serverKey))
        let serverErrors = Box<String>()
        let port = try loop.runBlocking { [self] () throws(SocketError) -> UInt16 in
            let listener = try loop.listen(on: SocketAddress("127.0.0.1:0")) { connection in
                let stream = try! TLSStream(wrapping: connection, context: context, role: .server)
                stream.start(handler: ErrorReporting(EchoHandler()) { error in serverErrors.set("\(error)") })
            }
            listeners.append(listener)
            return listener.address.port
        }
        return (port, serverErrors)
    }

    func clientContext(caFile: String? = nil, insecure: Bool = false) throws -> TLSContext {
        var configuration = TLSConfiguration.client()
        configuration.caFile = caFile ?? certificates.caFile
        configuration.insecureSkipVerify = insecure
        return try TLSContext(configuration)
    }

    /// Connects with TLS and runs an echo of `total` bytes through it.
    func echo(port: UInt16, context: TLSContext, serverName: String, total: Int) -> Result<Int, any Error>? {
        let outcome = Box<Result<Int, any Error>>()
        loop.execute { [loop] in
            loop.connect(to: SocketAddress(ipLiteral: "127.0.0.1", port: port)!) { result in
                guard case .success(let connection) = result else { return outcome.set(.failure(TLSError("connect failed"))) }
                let stream = try! TLSStream(wrapping: connection, context: context, role: .client, serverName: serverName)
                let verifier = EchoVerifier(total: total) { outcome.set($0) }
                stream.start(handler: verifier)
                verifier.pump(stream)
            }
        }
        return outcome.wait(120)
    }

    @Test func ourClientAndServerEcho64MiBIntact() throws {
        let (port, _) = try startEchoServer()
        let result = echo(port: port, context: try clientContext(), serverName: "localhost", total: 64 << 20)
        guard case .success(let count)? = result else { Issue.record("echo failed: \(String(describing: result))"); return }
        #expect(count == 64 << 20)
    }

    @Test func wrongHostnameFailsClearly() throws {
        let (port, _) = try startEchoServer()
        let result = echo(port: port, context: try clientContext(), serverName: "wrong.example", total: 10)
        guard case .failure(let error)? = result else { Issue.record("connected to the wrong host"); return }
        #expect("\(error)" == "certificate verify failed: hostname mismatch")
    }

    @Test func expiredCertificateFailsClearly() throws {
        let (port, _) = try startEchoServer(certificate: certificates.expiredCertificate)
        let result = echo(port: port, context: try clientContext(), serverName: "localhost", total: 10)
        guard case .failure(let error)? = result else { Issue.record("accepted an expired certificate"); return }
        #expect("\(error)" == "certificate verify failed: certificate has expired")
    }

    @Test func unknownCAFailsClearly() throws {
        let (port, _) = try startEchoServer()
        let result = echo(port: port, context: try clientContext(caFile: certificates.otherCAFile), serverName: "localhost", total: 10)
        guard case .failure(let error)? = result else { Issue.record("trusted an unknown CA"); return }
        #expect("\(error)" == "certificate verify failed: unable to get local issuer certificate")
    }

    @Test func insecureSkipVerifyConnectsToAnUnknownCA() throws {
        let (port, _) = try startEchoServer()
        let result = echo(port: port, context: try clientContext(caFile: certificates.otherCAFile, insecure: true), serverName: "wrong.example", total: 1000)
        guard case .success? = result else { Issue.record("\(String(describing: result))"); return }
    }

    @Test func garbageInsteadOfClientHelloIsClosedWithAnErrorAndTheServerGoesOn() throws {
        let (port, serverErrors) = try startEchoServer()
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        let garbage = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
        _ = garbage.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
        var buffer = [UInt8](repeating: 0, count: 512)
        var total = 0
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count <= 0 { break }
            total += count
        }
        close(fd)
        #expect(serverErrors.wait(10) == "TLS handshake: http request")  // OpenSSL recognises a plain HTTP request
        #expect(total < 100, "at most an alert comes back")
        let result = echo(port: port, context: try clientContext(), serverName: "localhost", total: 1 << 20)
        guard case .success? = result else { Issue.record("server broken after garbage: \(String(describing: result))"); return }
    }

    @Test func openSSLClientTalksToOurServer() throws {
        let (port, _) = try startEchoServer()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = ["s_client", "-connect", "127.0.0.1:\(port)", "-CAfile", certificates.caFile, "-servername", "localhost",
                             "-verify_return_error", "-verify_hostname", "localhost", "-alpn", "http/1.1", "-quiet", "-no_ign_eof"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        input.fileHandleForWriting.write(Data("hello from s_client\n".utf8))
        usleep(1_000_000)
        try input.fileHandleForWriting.close()
        let echoed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(echoed.contains("hello from s_client"), "\(echoed)")
    }

    @Test func ourClientTalksToOpenSSLServer() throws {
        let port = UInt16.random(in: 20000...40000)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = ["s_server", "-accept", "127.0.0.1:\(port)", "-cert", certificates.serverCertificate, "-key", certificates.serverKey, "-www"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        let context = try clientContext()
        var page: String?
        for _ in 0..<50 where page == nil {
            usleep(100_000)
            let outcome = Box<String>()
            loop.execute { [loop] in
                loop.connect(to: SocketAddress(ipLiteral: "127.0.0.1", port: port)!) { result in
                    guard case .success(let connection) = result else { return outcome.set("") }
                    let stream = try! TLSStream(wrapping: connection, context: context, role: .client, serverName: "localhost")
                    stream.start(handler: Collector { outcome.set($0) })
                    stream.write(Array("GET / HTTP/1.0\r\n\r\n".utf8))
                }
            }
            if let text = outcome.wait(10), !text.isEmpty { page = text }
        }
        #expect(page?.hasPrefix("HTTP/1.0 200 ok") == true, "\(String(describing: page?.prefix(200)))")
        #expect(page?.contains("TLSv1.3") == true)
    }
}

/// Gathers everything until the stream ends.
final class Collector: StreamHandler {
    var text = ""
    let done: (String) -> Void
    init(done: @escaping (String) -> Void) { self.done = done }
    func streamDidRead(_ stream: any ByteStream, _ buffer: inout RingBuffer) {
        text += String(decoding: buffer.bytes(), as: UTF8.self)
        buffer.consume(buffer.readableBytes)
    }
    func streamDidReadEOF(_ stream: any ByteStream) { stream.close() }
    func streamDidClose(_ stream: any ByteStream, error: (any Error)?) { done(text) }
}

/// Wraps a handler and reports the error its stream closed with.
final class ErrorReporting: StreamHandler {
    let wrapped: any StreamHandler
    let report: (any Error) -> Void
    init(_ wrapped: any StreamHandler, report: @escaping (any Error) -> Void) { self.wrapped = wrapped; self.report = report }
    func streamDidRead(_ stream: any ByteStream, _ buffer: inout RingBuffer) { wrapped.streamDidRead(stream, &buffer) }
    func streamDidReadEOF(_ stream: any ByteStream) { wrapped.streamDidReadEOF(stream) }
    func streamWritabilityDidChange(_ stream: any ByteStream, isWritable: Bool) { wrapped.streamWritabilityDidChange(stream, isWritable: isWritable) }
    func streamDidClose(_ stream: any ByteStream, error: (any Error)?) {
        if let error { report(error) }
        wrapped.streamDidClose(stream, error: error)
    }
}
