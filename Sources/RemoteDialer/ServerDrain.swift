import Reactor

/// A drain in progress: polls until the work it waits for is done or its deadline passes, then
/// runs `finish` once. `finishNow()` ends it early (an operator's second SIGTERM); `cancel()`
/// drops it (a shutdown that came another way).
final class ServerDrain {
    /// How often the remaining work is measured.
    static let checkInterval: Duration = .milliseconds(100)

    private let loop: EventLoop
    private let deadline: UInt64
    private let isBusy: () -> Bool
    private var finish: (() -> Void)?
    private var timer: TimerID?

    init(loop: EventLoop, timeout: Duration, isBusy: @escaping () -> Bool, finish: @escaping () -> Void) {
        self.loop = loop
        self.deadline = MonotonicClock.now() &+ timeout.nanosecondsClamped
        self.isBusy = isBusy
        self.finish = finish
        timer = loop.scheduleTimer(after: .zero, repeating: Self.checkInterval) { [weak self] in self?.check() }
    }

    private func check() {
        if !isBusy() || MonotonicClock.now() >= deadline { finishNow() }
    }

    func finishNow() {
        let finish = self.finish
        cancel()
        finish?()
    }

    /// Stops waiting without finishing (the server shut down by other means).
    func cancel() {
        if let timer { loop.cancelTimer(timer) }
        timer = nil
        finish = nil
    }
}
