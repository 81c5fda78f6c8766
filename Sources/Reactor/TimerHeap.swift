/// Identifies a timer for cancellation. Allocated from a per-loop counter; never reused.
public struct TimerID: Hashable, Sendable {
    let raw: UInt64
}

/// The loop's timers: a binary min-heap of (deadline, id) with the callbacks in a dictionary.
/// Cancelling removes the callback only (O(1)); the stale heap entry is skipped when it surfaces,
/// and the heap is rebuilt if stale entries come to outnumber live ones.
struct TimerHeap {
    private struct Entry {
        var deadline: UInt64
        var id: UInt64
    }

    private struct Timer {
        var interval: UInt64?  // nil for one-shot
        var callback: () -> Void
    }

    private var heap: [Entry] = []
    private var timers: [UInt64: Timer] = [:]

    var count: Int { timers.count }

    mutating func insert(id: UInt64, deadline: UInt64, interval: UInt64?, callback: @escaping () -> Void) {
        timers[id] = Timer(interval: interval, callback: callback)
        push(Entry(deadline: deadline, id: id))
    }

    /// Returns whether the timer was still pending.
    @discardableResult
    mutating func cancel(id: UInt64) -> Bool {
        guard timers.removeValue(forKey: id) != nil else { return false }
        if heap.count > 64 && heap.count > 2 * timers.count { compact() }
        return true
    }

    /// The earliest live deadline, dropping stale entries on the way.
    mutating func nextDeadline() -> UInt64? {
        while let top = heap.first {
            if timers[top.id] != nil { return top.deadline }
            pop()
        }
        return nil
    }

    /// Removes and returns the callbacks due at `now`, in deadline order, re-arming repeating
    /// timers. Callbacks run after this returns, so they may freely add or cancel timers.
    mutating func takeExpired(now: UInt64) -> [() -> Void] {
        var due: [() -> Void] = []
        while let top = heap.first, top.deadline <= now {
            pop()
            guard let timer = timers[top.id] else { continue }
            due.append(timer.callback)
            if let interval = timer.interval {
                // Skip missed periods rather than firing a burst after a stall.
                let missed = (now - top.deadline) / interval
                push(Entry(deadline: top.deadline + (missed + 1) * interval, id: top.id))
            } else {
                timers.removeValue(forKey: top.id)
            }
        }
        return due
    }

    private mutating func compact() {
        heap.removeAll { timers[$0.id] == nil }
        for index in stride(from: heap.count / 2 - 1, through: 0, by: -1) { siftDown(index) }
    }

    private mutating func push(_ entry: Entry) {
        heap.append(entry)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard Self.less(heap[child], heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func pop() {
        let last = heap.removeLast()
        guard !heap.isEmpty else { return }
        heap[0] = last
        siftDown(0)
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            guard left < heap.count else { return }
            var smallest = left
            if left + 1 < heap.count && Self.less(heap[left + 1], heap[left]) { smallest = left + 1 }
            guard Self.less(heap[smallest], heap[parent]) else { return }
            heap.swapAt(smallest, parent)
            parent = smallest
        }
    }

    /// Ties break by id, so timers with equal deadlines fire in creation order.
    private static func less(_ a: Entry, _ b: Entry) -> Bool {
        a.deadline != b.deadline ? a.deadline < b.deadline : a.id < b.id
    }
}
