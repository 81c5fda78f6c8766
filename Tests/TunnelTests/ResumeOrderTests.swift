import Reactor
import Testing
@testable import Tunnel

/// A piped connection's target: records when the session resumes it, and reads on demand.
private final class TargetStream: ByteStream {
    let loop: EventLoop
    let name: String
    let onResume: (TargetStream) -> Void
    var handler: (any StreamHandler)?
    var isOpen = true
    var isWritable: Bool { true }
    var isStarted: Bool { handler != nil }

    init(loop: EventLoop, name: String, onResume: @escaping (TargetStream) -> Void) {
        self.loop = loop
        self.name = name
        self.onResume = onResume
    }

    /// What a read from the target socket hands the pipe.
    func read(_ bytes: [UInt8]) {
        var ring = RingBuffer(minimumCapacity: 16, maximumCapacity: 1024)
        _ = bytes.withUnsafeBytes { ring.append($0) }
        handler?.streamDidRead(self, &ring)
    }

    func start(handler: any StreamHandler) { self.handler = handler }
    func replaceHandler(_ handler: any StreamHandler) { self.handler = handler }
    func write(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer) -> Bool { isOpen }
    func pauseReading() {}
    func resumeReading() { onResume(self) }
    func shutdownWrite() {}
    func closeAfterFlush() { close() }
    func close() { isOpen = false }
    func close(error: any Error) { isOpen = false }
}

/// When the WebSocket can take more again, the connections resume in turn: the one whose Data
/// went out last resumes last. The first to resume is the first its loop reads, so a fixed order
/// served one connection while the others waited.
struct ResumeOrderTests {
    @Test func theConnectionsTakeTurnsAfterTheWebSocketDrains() throws {
        let firsts = try onLoop("resume-order") { loop -> [String] in
            let transport = RecordingTransport(loop: loop)
            let session = TunnelSession(transport: transport, role: .server, clientKey: "c")
            transport.start(delegate: session)
            var resumed: [TargetStream] = []
            let targets = try (1...3).map { index in
                let target = TargetStream(loop: loop, name: "target \(index)") { resumed.append($0) }
                try session.dial(proto: "tcp", address: "127.0.0.1:\(8000 + index)").pipe(to: target)
                return target
            }
            var firsts: [String] = []
            for _ in 0..<6 {
                transport.isWritable = false
                session.transportWritabilityDidChange(isWritable: false)
                resumed = []
                transport.isWritable = true
                session.transportWritabilityDidChange(isWritable: true)
                #expect(resumed.count == targets.count)
                guard let first = resumed.first else { break }
                firsts.append(first.name)
                first.read([1, 2, 3])  // it reads first; its Data fills the WebSocket's queue again
            }
            return firsts
        }
        // Each connection first in turn, twice over: a round robin, not one favourite.
        #expect(Set(firsts).count == 3)
        #expect(Array(firsts[0..<3]) == Array(firsts[3..<6]))
    }
}
