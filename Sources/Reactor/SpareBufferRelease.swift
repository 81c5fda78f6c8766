/// Something holding buffers it can give back once they are empty: a connection's rings.
public protocol SpareBufferHolder: AnyObject {
    /// True while the holder is on its loop's sweep list: set when listed, cleared by the sweep.
    /// The holder only stores it (`= false`): listing a listed holder again, on every drain,
    /// then costs a test of this flag.
    var isAwaitingSpareBufferSweep: Bool { get set }
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

    /// Each holder once (`isAwaitingSpareBufferSweep`); a freed one leaves an empty entry.
    private var holders: [WeakHolder] = []

    var isEmpty: Bool { holders.isEmpty }

    /// Lists `holder` unless it is listed; returns true if the list was empty (the caller
    /// schedules the sweep).
    mutating func add(_ holder: any SpareBufferHolder) -> Bool {
        guard !holder.isAwaitingSpareBufferSweep else { return false }
        holder.isAwaitingSpareBufferSweep = true
        holders.append(WeakHolder(holder: holder))
        return holders.count == 1
    }

    /// Empties the list; returns the holders still alive, no longer marked as listed.
    mutating func takeAll() -> [any SpareBufferHolder] {
        defer { holders.removeAll(keepingCapacity: false) }
        return holders.compactMap { entry in
            guard let holder = entry.holder else { return nil }
            holder.isAwaitingSpareBufferSweep = false
            return holder
        }
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
