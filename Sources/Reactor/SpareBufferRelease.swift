/// Something holding buffers it can give back once they are empty: a connection's rings.
public protocol SpareBufferHolder: AnyObject {
    /// Frees the buffers that are empty now. Called on the loop thread by the loop's sweep.
    func releaseSpareBuffers()
}

/// The holders of a loop whose buffers drained since its last sweep.
///
/// A drained buffer is given back at the next sweep (at most `interval` later), not at once. A
/// connection that fills and drains its write queue on every burst (a bulk transfer in front of a
/// slower reader, the usual case) then reuses pages it already has: freed at once, a ring of
/// 128 KiB or more went back to the kernel (glibc maps such blocks on their own) and every refill
/// faulted in and zeroed fresh pages. Measured on a 1 GiB download, that was ~20% of the server's
/// CPU, 134k page faults per GiB. An idle connection still holds no buffer after one sweep.
struct SpareBufferSweep {
    static let interval: Duration = .seconds(1)

    private struct WeakHolder {
        weak var holder: (any SpareBufferHolder)?
    }

    /// Keyed by identity, so a holder draining again before the sweep is listed once.
    private var holders: [ObjectIdentifier: WeakHolder] = [:]

    var isEmpty: Bool { holders.isEmpty }

    /// Lists `holder`; returns true if the list was empty (the caller schedules the sweep).
    mutating func add(_ holder: any SpareBufferHolder) -> Bool {
        let key = ObjectIdentifier(holder)
        // A freed holder's address can be reused by a new one: its stale entry is replaced.
        if let listed = holders[key], listed.holder === holder { return false }
        let wasEmpty = holders.isEmpty
        holders[key] = WeakHolder(holder: holder)
        return wasEmpty
    }

    /// Empties the list; returns the holders still alive.
    mutating func takeAll() -> [any SpareBufferHolder] {
        defer { holders.removeAll(keepingCapacity: false) }
        return holders.values.compactMap(\.holder)
    }
}

extension EventLoop {
    /// Frees `holder`'s empty buffers at the loop's next sweep (see `SpareBufferSweep`).
    public func releaseWhenIdle(_ holder: some SpareBufferHolder) {
        assertInLoop()
        if spareBuffers.add(holder) {
            scheduleTimer(after: SpareBufferSweep.interval) { [weak self] in self?.sweepSpareBuffers() }
        }
    }

    private func sweepSpareBuffers() {
        for holder in spareBuffers.takeAll() { holder.releaseSpareBuffers() }
    }
}
