import Foundation
import Glibc
import Reactor
import Testing
import TLS
import TestSupport

@Suite(.serialized)
final class TLSStreamTests: TLSLoopFixture {
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

    @Test func aClientWithoutAServerNameRefusesToSkipTheHostnameCheck() throws {
        let (port, _) = try startEchoServer()
        let client = try clientContext()
        let refusal = OneShot<String>()
        connect(port: port) { connection in
            do {
                _ = try TLSStream(wrapping: connection!, context: client, role: .client)
                refusal.set("")
            } catch {
                refusal.set("\(error)")
            }
            connection!.close()
        }
        #expect(refusal.wait(seconds: 10) == "no server name to verify the certificate against (set serverName, or insecureSkipVerify for labs)")
    }

    @Test func anIPAddressIsVerifiedAgainstTheCertificateAddresses() throws {
        let (port, _) = try startEchoServer()
        guard case .success? = echo(port: port, context: try clientContext(), serverName: "127.0.0.1", total: 1000) else {
            Issue.record("127.0.0.1 is in the certificate"); return
        }
        let result = echo(port: port, context: try clientContext(), serverName: "127.0.0.2", total: 10)
        guard case .failure(let error)? = result else { Issue.record("accepted a certificate for another address"); return }
        #expect("\(error)" == "certificate verify failed: IP address mismatch")
    }

    @Test func garbageInsteadOfClientHelloIsClosedWithAnErrorAndTheServerGoesOn() throws {
        let (port, serverErrors) = try startEchoServer()
        let fd = try #require(connectLoopback(port: port))
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
        #expect(serverErrors.wait(seconds: 10) == "TLS handshake: http request")  // OpenSSL recognises a plain HTTP request
        #expect(total < 100, "at most an alert comes back")
        let result = echo(port: port, context: try clientContext(), serverName: "localhost", total: 1 << 20)
        guard case .success? = result else { Issue.record("server broken after garbage: \(String(describing: result))"); return }
    }

    /// A relay's half-close: the client sends, shuts its side (close_notify), and still reads the
    /// answer the server sends after hearing EOF, once.
    @Test func shutdownWriteIsAHalfCloseAndEOFComesOnce() throws {
        let context = try serverContext
        let eofCount = OneShot<Int>()
        let port = try listen { connection in
            try! TLSStream(wrapping: connection, context: context, role: .server).start(handler: AnswerAfterEOF { eofCount.set($0) })
        }
        let outcome = OneShot<(String, (any Error)?)>()
        let writeAfterShutdown = OneShot<Bool>()
        let client = try clientContext()
        connect(port: port) { connection in
            let stream = try! TLSStream(wrapping: connection!, context: client, role: .client, serverName: "localhost")
            stream.start(handler: ReadyNotifier(Collector { outcome.set(($0, $1)) }) { stream in
                stream.write(Array("question".utf8))
                stream.shutdownWrite()
                writeAfterShutdown.set(stream.write(Array("too late".utf8)))
            })
        }
        let (text, error) = try #require(outcome.wait(seconds: 10))
        #expect(writeAfterShutdown.wait(seconds: 10) == false)
        #expect(text == "answer to question")
        #expect(error == nil)
        // Counted when the server's stream closed: no EOF can come after that.
        #expect(eofCount.wait(seconds: 10) == 1, "EOF not delivered exactly once")
    }

    /// A reader that pauses stops decryption and, through TCP, the writer: the plaintext held for
    /// it stays within its ring, and everything arrives intact once it resumes.
    @Test func aPausedReaderStallsTheWriterWithBoundedBuffering() throws {
        let context = try serverContext
        let total = 64 << 20
        let reader = PausingReader(total: total)
        let port = try listen { connection in
            try! TLSStream(wrapping: connection, context: context, role: .server, maxBufferedPlaintext: 256 << 10).start(handler: reader)
        }
        let client = try clientContext()
        let writer = OneShot<(EchoVerifier, any ByteStream)>()
        connect(port: port) { connection in
            let stream = try! TLSStream(wrapping: connection!, context: client, role: .client, serverName: "localhost")
            let verifier = EchoVerifier(total: total) { _ in }
            stream.start(handler: verifier)
            writer.set((verifier, stream))
        }
        let (verifier, stream) = try #require(writer.wait(seconds: 10))
        #expect(reader.paused.wait(seconds: 10) != nil)
        // The writer is held back once the kernel buffers and its queue are full.
        #expect(waitUntil { loop.runBlocking { verifier.sent > 0 && !stream.isWritable } }, "the writer was never held back")
        let (sent, held) = loop.runBlocking { (verifier.sent, reader.maxHeld) }
        #expect(sent < total / 2, "the writer went on: \(sent) bytes")
        #expect(held <= 256 << 10, "plaintext held: \(held)")
        loop.execute { reader.resume() }
        #expect(reader.done.wait(seconds: 60) == true)
    }

    /// A TLS client, handshaken, whose ciphertext writes are counted on their way to the socket,
    /// talking to the echo server; `echoed` gets what came back once the client shuts down.
    private func countedClientOfAnEchoServer() throws -> (CountingStream, any ByteStream, echoed: OneShot<(String, (any Error)?)>) {
        let (port, _) = try startEchoServer()
        let client = try clientContext()
        let ready = OneShot<(CountingStream, any ByteStream)>()
        let echoed = OneShot<(String, (any Error)?)>()
        connect(port: port) { connection in
            let counting = CountingStream(wrapping: connection!)
            let stream = try! TLSStream(wrapping: counting, context: client, role: .client, serverName: "localhost")
            stream.start(handler: ReadyNotifier(Collector { echoed.set(($0, $1)) }) { ready.set((counting, $0)) })
        }
        let (counting, stream) = try #require(ready.wait(seconds: 10))
        return (counting, stream, echoed)
    }

    /// Small writes in one loop pass become one record, not one record each.
    @Test func smallWritesInOneLoopPassAreGatheredIntoOneRecord() throws {
        let (counting, stream, echoed) = try countedClientOfAnEchoServer()
        let message = "0123456789abcdef"
        let before = loop.runBlocking {
            let before = counting.bytesWritten
            for _ in 0..<1000 { stream.write(Array(message.utf8)) }
            return before
        }
        let written = loop.runBlocking { counting.bytesWritten } - before
        #expect(written > 16_000 && written <= 16_000 + 2 * 22, "ciphertext for 1000 writes of 16 bytes: \(written)")
        loop.runBlocking { stream.shutdownWrite() }
        let (text, _) = try #require(echoed.wait(seconds: 10))
        #expect(text == String(repeating: message, count: 1000))
    }

    /// A 64 KiB write is four records, handed to the inner stream in one write, not four.
    @Test func theRecordsOfOneWriteReachTheInnerStreamTogether() throws {
        let (counting, stream, echoed) = try countedClientOfAnEchoServer()
        let message = String(repeating: "0123456789abcdef", count: 4096)  // 64 KiB
        let (calls, bytes) = loop.runBlocking {
            let (calls, bytes) = (counting.writeCalls, counting.bytesWritten)
            stream.write(Array(message.utf8))
            return (counting.writeCalls - calls, counting.bytesWritten - bytes)
        }
        #expect(calls == 1 && bytes > 64 << 10, "\(calls) writes of \(bytes) bytes")
        loop.runBlocking { stream.shutdownWrite() }
        let (text, _) = try #require(echoed.wait(seconds: 10))
        #expect(text == message)
    }

    /// Writes and a close asked for before the handshake completes happen after it, in order.
    @Test func writesAndCloseBeforeTheHandshakeAreKept() throws {
        let (port, _) = try startEchoServer()
        let client = try clientContext()
        let outcome = OneShot<(String, (any Error)?)>()
        let writableBeforeHandshake = OneShot<Bool>()
        connect(port: port) { connection in
            let stream = try! TLSStream(wrapping: connection!, context: client, role: .client, serverName: "localhost")
            stream.start(handler: Collector { outcome.set(($0, $1)) })
            writableBeforeHandshake.set(stream.isWritable)
            stream.write(Array("early bytes".utf8))
            stream.shutdownWrite()
        }
        let (text, error) = try #require(outcome.wait(seconds: 10))
        #expect(writableBeforeHandshake.wait(seconds: 10) == false)
        #expect(text == "early bytes")
        #expect(error == nil)
    }
}

/// Collects what it reads; on EOF answers "answer to <what it read>" and closes after it.
final class AnswerAfterEOF: StreamHandler {
    var text = ""
    var eofs = 0
    /// Called when the stream closes, with how many EOFs it delivered.
    let reportEOFs: (Int) -> Void
    init(reportEOFs: @escaping (Int) -> Void) { self.reportEOFs = reportEOFs }
    func streamDidRead(_ stream: any ByteStream, _ buffer: inout RingBuffer) {
        text += String(decoding: buffer.bytes(), as: UTF8.self)
        buffer.consume(buffer.readableBytes)
    }
    func streamDidReadEOF(_ stream: any ByteStream) {
        eofs += 1
        stream.write(Array("answer to \(text)".utf8))
        stream.closeAfterFlush()
    }
    func streamDidClose(_ stream: any ByteStream, error: (any Error)?) { reportEOFs(eofs) }
}

/// Leaves the first bytes in the ring and pauses; after `resume()` reads and checks everything.
final class PausingReader: StreamHandler, @unchecked Sendable {  // used on the loop only; Sendable to be resumed from the test via loop.execute
    let total: Int
    var received = 0
    var intact = true
    var maxHeld = 0
    var draining = false
    weak var stream: (any ByteStream)?
    let paused = OneShot<Bool>()
    let done = OneShot<Bool>()
    init(total: Int) { self.total = total }

    func streamDidRead(_ stream: any ByteStream, _ buffer: inout RingBuffer) {
        maxHeld = max(maxHeld, buffer.readableBytes)
        guard draining else {
            self.stream = stream
            stream.pauseReading()
            paused.set(true)
            return
        }
        buffer.withReadableRegions { a, b in
            for region in [a, b] {
                for (index, byte) in region.enumerated() where byte != TestPattern.byte(at: received + index) { intact = false; break }
                received += region.count
            }
        }
        buffer.consume(buffer.readableBytes)
        if received >= total {
            done.set(intact && received == total)
            stream.close()
        }
    }
    func resume() {
        draining = true
        stream?.resumeReading()
    }
    func streamDidClose(_ stream: any ByteStream, error: (any Error)?) { if received < total { done.set(false) } }
}

/// Tells once when its stream becomes writable (the handshake is done), otherwise forwards.
final class ReadyNotifier: StreamHandler {
    let wrapped: any StreamHandler
    var ready: ((any ByteStream) -> Void)?
    init(_ wrapped: any StreamHandler, ready: @escaping (any ByteStream) -> Void) { self.wrapped = wrapped; self.ready = ready }
    func streamDidRead(_ stream: any ByteStream, _ buffer: inout RingBuffer) { wrapped.streamDidRead(stream, &buffer) }
    func streamDidReadEOF(_ stream: any ByteStream) { wrapped.streamDidReadEOF(stream) }
    func streamWritabilityDidChange(_ stream: any ByteStream, isWritable: Bool) {
        if isWritable, let ready { self.ready = nil; ready(stream) }
        wrapped.streamWritabilityDidChange(stream, isWritable: isWritable)
    }
    func streamDidClose(_ stream: any ByteStream, error: (any Error)?) { wrapped.streamDidClose(stream, error: error) }
}
