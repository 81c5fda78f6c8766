import Glibc
import Testing
@testable import Reactor

@Suite(.serialized) struct SignalSourceTests {
    @Test func blockedSignalArrivesAsALoopEvent() throws {
        // The loop thread inherits the mask of the thread that starts it: block first. The test
        // process has other threads that do not block SIGUSR1, so the signal is sent to the loop
        // thread itself (a program blocks it in main before any thread exists and can use kill).
        let set = SignalSource.block([SIGUSR1])
        let group = try ReactorGroup(loopCount: 1)
        defer { group.shutdown() }
        let loop = group.loops[0]
        let received = OneShot<(Int32, Bool)>()
        let source = try loop.runBlocking { () throws(SocketError) -> LoopBoundSource in
            LoopBoundSource(try loop.watchSignals(set) { signal in received.set((signal, loop.inEventLoop)) })
        }
        loop.execute { _ = pthread_kill(pthread_self(), SIGUSR1) }
        let (signal, onLoop) = try #require(received.wait(seconds: 10))
        #expect(signal == SIGUSR1)
        #expect(onLoop)
        loop.runBlocking { source.source.close() }
    }
}

final class LoopBoundSource: @unchecked Sendable {  // created and closed on the loop only
    let source: SignalSource
    init(_ source: SignalSource) { self.source = source }
}
