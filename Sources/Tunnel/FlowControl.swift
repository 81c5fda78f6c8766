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
        if !sentPause && (targetFull || buffered > options.pauseThreshold) {
            sentPause = true
            statistics.pausesSent += 1
            session.sendControl(.pause, connID: id)
        } else if sentPause && !targetFull && buffered < options.resumeThreshold {
            sentPause = false
            session.sendControl(.resume, connID: id)
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
