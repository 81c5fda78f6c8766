/// Identifies a timer for cancellation. `raw` comes from a per-loop counter and is never reused;
/// `slot` is where the loop keeps the timer's callback.
public struct TimerID: Hashable, Sendable {
    let raw: UInt64
    let slot: Int
}

/// The loop's timers: a binary min-heap of (deadline, id) with the callbacks in slots, which are
/// reused. Cancelling empties the slot (O(1), no hashing: a proxied request starts and cancels
/// two timers); the stale heap entry, whose id no longer matches its slot's, is skipped when it
/// surfaces, and the heap is rebuilt if stale entries come to outnumber live ones.
struct TimerHeap {
    private struct Entry {
        var deadline: UInt64
        var id: UInt64
        var slot: Int
    }

    private struct Timer {
        /// 0 while the slot is free (ids start at 1).
        var id: UInt64 = 0
        var interval: UInt64?  // nil for one-shot
        var callback: (() -> Void)?
    }

    private var heap: [Entry] = []
    private var slots: [Timer] = []
    private var freeSlots: [Int] = []

    private(set) var count = 0

    /// Adds timer `id` (> 0, never used before); returns its slot.
    mutating func insert(id: UInt64, deadline: UInt64, interval: UInt64?, callback: @escaping () -> Void) -> Int {
        let slot: Int
        if let free = freeSlots.popLast() {
            slot = free
        } else {
            slot = slots.count
            slots.append(Timer())
        }
        slots[slot] = Timer(id: id, interval: interval, callback: callback)
        count += 1
        push(Entry(deadline: deadline, id: id, slot: slot))
        return slot
    }

    /// Returns whether the timer was still pending.
    @discardableResult
    mutating func cancel(id: UInt64, slot: Int) -> Bool {
        guard slots.indices.contains(slot), slots[slot].id == id else { return false }
        release(slot)
        if heap.count > 64 && heap.count > 2 * count { compact() }
        return true
    }

    private mutating func release(_ slot: Int) {
        slots[slot] = Timer()
        freeSlots.append(slot)
        count -= 1
    }

    private func isLive(_ entry: Entry) -> Bool { slots[entry.slot].id == entry.id }

    /// The earliest live deadline, dropping stale entries on the way.
    mutating func nextDeadline() -> UInt64? {
        while let top = heap.first {
            if isLive(top) { return top.deadline }
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
            guard isLive(top), let callback = slots[top.slot].callback else { continue }
            due.append(callback)
            if let interval = slots[top.slot].interval {
                // Skip missed periods rather than firing a burst after a stall.
                let missed = (now - top.deadline) / interval
                push(Entry(deadline: top.deadline + (missed + 1) * interval, id: top.id, slot: top.slot))
            } else {
                release(top.slot)
            }
        }
        return due
    }

    private mutating func compact() {
        let slots = slots
        heap.removeAll { slots[$0.slot].id != $0.id }
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
