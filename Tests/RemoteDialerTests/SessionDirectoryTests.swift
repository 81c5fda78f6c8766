import Dispatch
import RemoteDialer
import Testing

/// The directory the loops share: the per-client session cap holds however the loops race.
struct SessionDirectoryTests {
    /// Eight loops admitting sessions of one key at once: exactly `maximum` get in, and the
    /// count the cap reads is the sum over every loop.
    @Test func theSessionCapHoldsWhenLoopsAdmitAtOnce() {
        let directory = SessionDirectory()
        let admitted = Counter()
        DispatchQueue.concurrentPerform(iterations: 8) { loop in
            for _ in 0..<200 where directory.addClient("racer", loop: loop, maximum: 37) { admitted.add() }
        }
        #expect(admitted.value == 37)
        #expect(directory.sessionCount(clientKey: "racer") == 37)
        // A place freed on one loop can be taken on another.
        let loop = directory.loops(ofClient: "racer").first!
        directory.removeClient("racer", loop: loop)
        #expect(directory.addClient("racer", loop: (loop + 1) % 8, maximum: 37))
        #expect(!directory.addClient("racer", loop: loop, maximum: 37))
    }

    private final class Counter: @unchecked Sendable {  // guarded by its lock
        private let lock = DispatchQueue(label: "counter")
        private var count = 0
        func add() { lock.sync { count += 1 } }
        var value: Int { lock.sync { count } }
    }
}
