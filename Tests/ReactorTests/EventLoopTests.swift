import Dispatch
import Glibc
import Testing
@testable import Reactor

@Suite(.serialized) struct EventLoopTests {
    @Test func timersFireInDeadlineOrderAndCancelledOnesNever() throws {
        let group = try ReactorGroup(loopCount: 1)
        defer { group.shutdown() }
        let loop = group.loops[0]
        let done = OneShot<[Int]>()
        loop.execute {
            var fired: [Int] = []
            var remaining = 0
            var generator = Xorshift.logged()
            var cancelled: [TimerID] = []
            // 5,000 timers with random delays; every other one is cancelled before it fires.
            var delays: [Int: Int] = [:]
            let base = MonotonicClock.now()
            for index in 0..<5_000 {
                let delay = Int.random(in: 0...200, using: &generator)
                delays[index] = delay
                let id = loop.scheduleTimer(deadline: base + UInt64(delay) * 1_000_000) {
                    fired.append(index)
                    remaining -= 1
                    if remaining == 0 { done.set(fired.map { delays[$0]! * 10_000 + $0 }) }
                }
                if index % 2 == 1 { cancelled.append(id) } else { remaining += 1 }
            }
            for id in cancelled { #expect(loop.cancelTimer(id)) }
            #expect(loop.pendingTimerCount == 2_500)
        }
        let keys = try #require(done.wait(seconds: 10))
        #expect(keys.count == 2_500)
        #expect(keys.allSatisfy { ($0 % 10_000) % 2 == 0 }, "a cancelled timer fired")
        // Equal deadlines fire in creation order, so the keys (deadline, index) are sorted.
        let inOrder = keys == keys.sorted()
        #expect(inOrder, "timers fired out of deadline order")
    }

    @Test func repeatingTimerFiresUntilCancelled() throws {
        let group = try ReactorGroup(loopCount: 1)
        defer { group.shutdown() }
        let loop = group.loops[0]
        let done = OneShot<Int>()
        loop.execute {
            var ticks = 0
            var id: TimerID?
            id = loop.scheduleTimer(after: .milliseconds(1), repeating: .milliseconds(2)) {
                ticks += 1
                if ticks == 10 {
                    loop.cancelTimer(id!)
                    // Give a wrongly re-armed timer the chance to fire again.
                    loop.scheduleTimer(after: .milliseconds(30)) { done.set(ticks) }
                }
            }
        }
        #expect(done.wait(seconds: 10) == 10)
    }

    @Test func crossThreadSubmissionUnderContention() throws {
        let group = try ReactorGroup(loopCount: 1)
        defer { group.shutdown() }
        let loop = group.loops[0]
        let producers = 4
        let perProducer = 50_000
        let state = LoopConfinedCounter()
        var waits: [DispatchSemaphore] = []
        for producer in 0..<producers {
            waits.append(spawnThread {
                for sequence in 0..<perProducer {
                    loop.execute {
                        precondition(loop.inEventLoop)
                        state.record(producer: producer, sequence: sequence)
                    }
                }
            })
        }
        for wait in waits { #expect(wait.wait(timeout: .now() + 60) == .success, "a producer thread did not finish") }
        let result = loop.runBlocking { (state.total, state.outOfOrder) }
        #expect(result.0 == producers * perProducer)
        #expect(result.1 == 0, "tasks from one producer ran out of submission order")
    }

    @Test func runSoonRunsAfterTheCurrentTask() throws {
        let group = try ReactorGroup(loopCount: 1)
        defer { group.shutdown() }
        let loop = group.loops[0]
        let log = LoopConfinedLog()
        loop.runBlocking {
            loop.runSoon { log.items.append("soon") }
            log.items.append("now")
        }
        #expect(loop.runBlocking { log.items } == ["now", "soon"])
    }

    @Test func eachLoopKnowsItsOwnThreadAndRoundRobinCoversThemAll() throws {
        let group = try ReactorGroup(loopCount: 2)
        defer { group.shutdown() }
        #expect(!group.loops[0].inEventLoop)
        #expect(group.loops[0].runBlocking { group.loops[0].inEventLoop })
        #expect(!group.loops[0].runBlocking { group.loops[1].inEventLoop })
        group.loops[0].runBlocking { group.loops[0].assertInLoop() }  // on its thread: no trap
        let picked = Set((0..<4).map { _ in ObjectIdentifier(group.next()) })
        #expect(picked.count == 2)
    }

    #if DEBUG
    /// Loop-confined state is checked on entry in debug builds: touching a loop from another
    /// thread stops the process (run in a child process).
    @Test func assertInLoopStopsTheProcessOffTheLoopThread() async {
        setenv("SWIFT_BACKTRACE", "enable=no", 1)  // the child's crash backtrace can take minutes
        await #expect(processExitsWith: .failure) {
            let group = try! ReactorGroup(loopCount: 1)
            group.loops[0].assertInLoop()
        }
    }
    #endif
}

/// Loop-confined counters for the contention test (touched only on the loop thread).
final class LoopConfinedCounter: @unchecked Sendable {  // mutated only on the single loop thread
    private var last: [Int: Int] = [:]
    var total = 0
    var outOfOrder = 0

    func record(producer: Int, sequence: Int) {
        if let previous = last[producer], previous + 1 != sequence { outOfOrder += 1 }
        last[producer] = sequence
        total += 1
    }
}

final class LoopConfinedLog: @unchecked Sendable {  // mutated only on the single loop thread
    var items: [String] = []
}
