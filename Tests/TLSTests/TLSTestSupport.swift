import Foundation
import Glibc
import Reactor
import TLS
import TestSupport

/// The byte at `offset` of the pattern every test stream carries.

/// Sends `total` pattern bytes, reads the echo and checks it; reports the outcome once.
final class EchoVerifier: StreamHandler {
    let total: Int
    var sent = 0
    var received = 0
    var intact = true
    let done: (Result<Int, any Error>) -> Void
    var finished = false

    init(total: Int, done: @escaping (Result<Int, any Error>) -> Void) {
        self.total = total
        self.done = done
    }

    func pump(_ stream: any ByteStream) {
        sent = TestPattern.write(to: stream, from: sent, upTo: total)
    }

    func streamDidRead(_ stream: any ByteStream, _ buffer: inout RingBuffer) {
        buffer.withReadableRegions { a, b in
            for region in [a, b] {
                for (index, byte) in region.enumerated() where byte != TestPattern.byte(at: received + index) { intact = false; break }
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

/// Gathers everything until the stream closes; reports the text and the close error.
final class Collector: StreamHandler {
    var text = ""
    let done: (String, (any Error)?) -> Void
    init(done: @escaping (String, (any Error)?) -> Void) { self.done = done }
    func streamDidRead(_ stream: any ByteStream, _ buffer: inout RingBuffer) {
        text += String(decoding: buffer.bytes(), as: UTF8.self)
        buffer.consume(buffer.readableBytes)
    }
    func streamDidReadEOF(_ stream: any ByteStream) { stream.close() }
    func streamDidClose(_ stream: any ByteStream, error: (any Error)?) { done(text, error) }
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

/// One loop on its own thread with TLS servers and clients on it, over loopback.
class TLSLoopFixture {
    let certificates = TestCertificates.shared
    let group: ReactorGroup
    let loop: EventLoop
    var listeners: [Listener] = []

    init() throws {
        group = try ReactorGroup(loopCount: 1, name: "tls")
        loop = group.next()
    }

    deinit { group.shutdown() }

    var serverContext: TLSContext {
        get throws { try TLSContext(.server(certificateChainFile: certificates.serverCertificate, privateKeyFile: certificates.serverKey)) }
    }

    /// Listens on loopback; every accepted connection is handed to `accept` on the loop.
    func listen(_ accept: @escaping (Connection) -> Void) throws -> UInt16 {
        try loop.runBlocking { [self] () throws(SocketError) -> UInt16 in
            let listener = try loop.listen(on: SocketAddress("127.0.0.1:0")) { accept($0) }
            listeners.append(listener)
            return listener.address.port
        }
    }

    /// A TLS echo server; returns its port and the first error one of its connections ended with.
    func startEchoServer(certificate: String? = nil) throws -> (UInt16, OneShot<String>) {
        let context = try TLSContext(.server(certificateChainFile: certificate ?? certificates.serverCertificate, privateKeyFile: certificates.serverKey))
        let serverErrors = OneShot<String>()
        let port = try listen { connection in
            let stream = try! TLSStream(wrapping: connection, context: context, role: .server)
            stream.start(handler: ErrorReporting(EchoHandler()) { error in serverErrors.set("\(error)") })
        }
        return (port, serverErrors)
    }

    /// A TLS echo server that requires client certificates chaining to `clientCAFile`; it trusts
    /// the server CA as its own `caFile`, which must not count for clients. Returns its port, the
    /// first error one of its connections ended with, and the certificate of the first client
    /// whose handshake completed.
    func startMutualTLSEchoServer(clientCAFile: String) throws -> (port: UInt16, errors: OneShot<String>, clients: OneShot<TLSPeerCertificate?>) {
        var configuration = TLSConfiguration.server(certificateChainFile: certificates.serverCertificate, privateKeyFile: certificates.serverKey,
                                                    clientCAFile: clientCAFile)
        configuration.caFile = certificates.caFile
        let context = try TLSContext(configuration)
        let errors = OneShot<String>()
        let clients = OneShot<TLSPeerCertificate?>()
        let port = try listen { connection in
            let stream = try! TLSStream(wrapping: connection, context: context, role: .server)
            let echo = ErrorReporting(EchoHandler()) { error in errors.set("\(error)") }
            stream.start(handler: ReadyNotifier(echo) { _ in clients.set(stream.peerCertificate) })
        }
        return (port, errors, clients)
    }

    /// A client context trusting `caFile` (default: the test CA) that presents `certificate` if given.
    func clientContext(caFile: String? = nil, insecure: Bool = false, certificate: TestCertificates.ClientCertificate? = nil) throws -> TLSContext {
        var configuration = TLSConfiguration.client()
        configuration.caFile = caFile ?? certificates.caFile
        configuration.insecureSkipVerify = insecure
        configuration.certificateChainFile = certificate?.certificate
        configuration.privateKeyFile = certificate?.key
        return try TLSContext(configuration)
    }

    /// Connects to `port` on the loop and gives the connection to `body` (nil if refused).
    func connect(port: UInt16, _ body: @escaping @Sendable (Connection?) -> Void) {
        loop.execute { [loop] in
            loop.connect(to: SocketAddress(ipLiteral: "127.0.0.1", port: port)!) { result in
                guard case .success(let connection) = result else { return body(nil) }
                body(connection)
            }
        }
    }

    /// Connects with TLS and runs an echo of `total` bytes through it.
    func echo(port: UInt16, context: TLSContext, serverName: String, total: Int) -> Result<Int, any Error>? {
        let outcome = OneShot<Result<Int, any Error>>()
        connect(port: port) { connection in
            guard let connection else { return outcome.set(.failure(TLSError("connect failed"))) }
            do {
                let stream = try TLSStream(wrapping: connection, context: context, role: .client, serverName: serverName)
                let verifier = EchoVerifier(total: total) { outcome.set($0) }
                stream.start(handler: verifier)
                verifier.pump(stream)
            } catch {
                outcome.set(.failure(error))
            }
        }
        return outcome.wait(seconds: 120)
    }
}


/// An `openssl` CLI process whose stdout and stderr are collected; `stop()` kills it if it is
/// still running (call it in a `defer`).
final class OpenSSLProcess: @unchecked Sendable {  // output is guarded by `lock`; the rest is set before run()
    let process = Process()
    let input = Pipe()
    private let output = Pipe()
    private let lock = NSLock()
    private var collected = Data()
    private var ended = false

    init(_ arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        process.standardInput = input
        process.standardOutput = output
        process.standardError = output
        output.fileHandleForReading.readabilityHandler = { [self] handle in
            let data = handle.availableData
            lock.lock()
            collected.append(data)
            if data.isEmpty { ended = true }  // end of file: the process closed its output
            lock.unlock()
        }
        try process.run()
    }

    var text: String {
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: collected, as: UTF8.self)
    }

    /// The process closed its output (it exited): everything it wrote is in `text`.
    var outputEnded: Bool {
        lock.lock()
        defer { lock.unlock() }
        return ended
    }

    func send(_ text: String) { input.fileHandleForWriting.write(Data(text.utf8)) }

    /// Waits until the output contains `needle` or the process ends (true if it was seen).
    func waitForOutput(containing needle: String, seconds: Double = 20) -> Bool {
        waitUntil(seconds: seconds) { text.contains(needle) || outputEnded } && text.contains(needle)
    }

    func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        output.fileHandleForReading.readabilityHandler = nil
    }
}
