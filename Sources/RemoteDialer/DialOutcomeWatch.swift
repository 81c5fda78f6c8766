import Reactor
import Tunnel

/// The tunnel protocol has no Connect acknowledgement: a client that cannot dial answers with
/// an Error, one that can says nothing. Entry points that must answer their requester (HTTP
/// CONNECT's 200 or 502, SOCKS5's reply code) watch a fresh connection for a short while:
/// the target's first byte means open, an Error (or close) means refused, and silence for
/// `wait` is taken as open. A refusal that comes later simply closes the spliced stream.
final class DialOutcomeWatch: StreamHandler {
    enum Outcome {
        case open
        case refused(any Error)
    }

    /// The target closed the connection before sending anything.
    struct ClosedBeforeData: Error, CustomStringConvertible {
        var description: String { "connection closed by the target" }
    }

    private var onOutcome: ((Outcome) -> Void)?
    private var timer: TimerID?
    private let loop: EventLoop

    /// Starts `connection` with this watch; `onOutcome` runs once, on the loop. The connection
    /// is left paused (with whatever arrived in its buffer) for the next owner to take over
    /// with `replaceHandler`.
    @discardableResult
    init(_ connection: TunnelConnection, wait: Duration, onOutcome: @escaping (Outcome) -> Void) {
        loop = connection.loop
        self.onOutcome = onOutcome
        connection.start(handler: self)
        guard connection.isOpen else { return }
        // Strong capture: the timer keeps the watch alive until it fires or is cancelled.
        timer = loop.scheduleTimer(after: wait) { [self] in report(.open) }
    }

    private func report(_ outcome: Outcome) {
        guard let onOutcome else { return }
        self.onOutcome = nil
        if let timer { loop.cancelTimer(timer) }
        timer = nil
        onOutcome(outcome)
    }

    func streamDidRead(_ stream: any ByteStream, _ buffer: inout RingBuffer) {
        stream.pauseReading()  // the bytes stay for the relay
        report(.open)
    }

    func streamDidReadEOF(_ stream: any ByteStream) {
        stream.close()
        report(.refused(ClosedBeforeData()))
    }

    func streamDidClose(_ stream: any ByteStream, error: (any Error)?) {
        report(.refused(error ?? ClosedBeforeData()))
    }
}
