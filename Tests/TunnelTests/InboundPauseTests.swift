import Testing
@testable import Tunnel

/// The Pause/Resume decision alone: thresholds, hysteresis, and a full consumer, with no loop.
struct InboundPauseTests {
    private static func run(_ steps: [(buffered: Int, full: Bool)]) -> [InboundPause.Signal?] {
        var state = InboundPause()
        return steps.map { state.update(buffered: $0.buffered, consumerFull: $0.full, pauseThreshold: 100, resumeThreshold: 10) }
    }

    @Test func pauseAboveTheThresholdOnceAndResumeOnlyBelowTheLowerOne() {
        #expect(Self.run([(100, false), (101, false), (500, false), (50, false), (10, false), (9, false), (9, false)])
                == [nil, .pause, nil, nil, nil, .resume, nil])
    }

    @Test func aFullConsumerPausesAtOnceAndHoldsThePauseWhileFull() {
        #expect(Self.run([(0, true), (0, true), (0, false), (200, false), (0, false)])
                == [.pause, nil, .resume, .pause, .resume])
    }
}
