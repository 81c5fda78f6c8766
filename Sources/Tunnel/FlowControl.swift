import Reactor

/// Pause/Resume, both directions, wired into read interest:
/// - inbound: a connection whose unconsumed inbound bytes pass `pauseThreshold` (or, when piped,
///   whose target socket's write queue passes its high watermark; when handled, whose handler
///   paused reading) sends Pause, and Resume once that is over and they drain below
///   `resumeThreshold`;
/// - outbound: on Pause from the remote, a piped connection stops reading its target socket
///   (EPOLLIN off) and a handled one reports itself unwritable, until Resume;
/// - session-wide: while the WebSocket's own write queue is above its high watermark, every
///   connection of the session stops reading / is unwritable.
extension TunnelConnection {
    func updateInboundPressure() {
        guard isOpen else { return }
        let buffered = inbound.readableBytes
        // The consumer cannot take more: whatever arrives now only waits in `inbound`, so the
        // remote is told at once rather than after `pauseThreshold` more bytes (plus what is in
        // flight behind them, which measured up to 4 MB more on loopback).
        var targetFull = false
        switch consumer {
        case .pipe(let stream): targetFull = !stream.isWritable
        case .handler: targetFull = readingPaused
        case .none: break
        }
        let options = session.options
        switch inboundPause.update(buffered: buffered, consumerFull: targetFull,
                                   pauseThreshold: options.pauseThreshold, resumeThreshold: options.resumeThreshold) {
        case .pause?:
            statistics.pausesSent += 1
            session.sendControl(.pause, connID: id)
        case .resume?:
            session.sendControl(.resume, connID: id)
        case nil:
            break
        }
    }

    func receivePause() {
        guard isOpen, !remotePaused else { return }
        remotePaused = true
        statistics.pausesReceived += 1
        outboundStateDidChange()
    }

    func receiveResume() {
        guard isOpen, remotePaused else { return }
        remotePaused = false
        flushPendingOutbound()
        outboundStateDidChange()
    }

    /// The remote's Pause, or the WebSocket's write queue, changed whether we may send.
    func outboundStateDidChange() {
        guard isOpen else { return }
        let maySend = !remotePaused && session.transportIsWritable
        switch consumer {
        case .pipe(let stream):
            if maySend { stream.resumeReading() } else { stream.pauseReading() }
        case .handler(let handler):
            let writable = isWritable
            if writable != reportedWritable {
                reportedWritable = writable
                handler.streamWritabilityDidChange(self, isWritable: writable)
            }
        case .none:
            break
        }
    }

    /// Sends what was written during a Pause, then honours a deferred closeAfterFlush.
    private func flushPendingOutbound() {
        guard !pendingOutbound.isEmpty else { return }
        pendingOutbound.withReadableRegions { first, second in
            sendData(first)
            sendData(second)
        }
        pendingOutbound.discardAll()
        if closeAfterFlushRequested { finish(error: nil, notifyRemote: true) }
    }
}

/// Whether the remote was told to stop sending on a connection, and when to tell it to start
/// again: a pure state, no loop or session, so its thresholds are tested directly.
struct InboundPause {
    enum Signal: Equatable { case pause, resume }

    /// Pause went out and Resume has not yet.
    private(set) var isSent = false

    /// The signal to send now, if any: Pause once the consumer is full or more than
    /// `pauseThreshold` bytes wait; Resume once it is not and fewer than `resumeThreshold` do.
    mutating func update(buffered: Int, consumerFull: Bool, pauseThreshold: Int, resumeThreshold: Int) -> Signal? {
        if !isSent && (consumerFull || buffered > pauseThreshold) {
            isSent = true
            return .pause
        }
        if isSent && !consumerFull && buffered < resumeThreshold {
            isSent = false
            return .resume
        }
        return nil
    }
}
