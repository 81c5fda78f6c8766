import Testing
@testable import Reactor

@Suite struct RingBufferTests {
    @Test func capacityIsAPowerOfTwoAndLazilyAllocated() {
        let ring = RingBuffer(minimumCapacity: 1000, maximumCapacity: 5000)
        #expect(ring.capacity == 0)
        #expect(ring.minimumCapacity == 1024)
        #expect(ring.maximumCapacity == 8192)
    }

    /// A borrowed ring reads the lender's bytes in place; a write moves what is readable into its
    /// own storage and leaves the lender's bytes alone.
    @Test func borrowedRingReadsInPlaceAndCopiesOnWrite() {
        var lender: [UInt8] = Array(0..<100)
        lender.withUnsafeMutableBytes { bytes in
            var ring = RingBuffer(borrowing: bytes, maximumCapacity: 1 << 16)
            #expect(ring.readableBytes == 100)
            ring.withReadableRegions { a, b in
                #expect(a.baseAddress == UnsafeRawPointer(bytes.baseAddress))
                #expect(a.count == 100 && b.isEmpty)
            }
            ring.consume(90)
            #expect(ring.bytes() == Array(90..<100))
            #expect(append(&ring, [200, 201]))
            #expect(ring.bytes() == Array(90..<100) + [200, 201])
            ring.withReadableRegions { a, _ in #expect(a.baseAddress != UnsafeRawPointer(bytes.baseAddress)) }
        }
        #expect(lender == Array(0..<100))
    }

    @Test func appendConsumeAcrossTheWrapPoint() {
        var ring = RingBuffer(minimumCapacity: 16, maximumCapacity: 16)
        #expect(append(&ring, Array(0..<12 as Range<UInt8>)))
        ring.consume(10)
        // 2 readable bytes at index 10..11; appending 10 more wraps.
        #expect(append(&ring, Array(12..<22 as Range<UInt8>)))
        #expect(ring.readableBytes == 12)
        #expect(ring.capacity == 16)
        ring.withReadableRegions { a, b in
            #expect(Array(a) == Array(10..<16 as Range<UInt8>))
            #expect(Array(b) == Array(16..<22 as Range<UInt8>))
        }
        #expect(ring.bytes() == Array(10..<22 as Range<UInt8>))
        #expect(ring.byte(at: 7) == 17)
        // A sub-range entirely after the wrap point is a single region.
        ring.withReadableRegions(from: 7, count: 3) { a, b in
            #expect(Array(a) == [17, 18, 19])
            #expect(b.isEmpty)
        }
    }

    @Test func appendBeyondMaximumIsRefusedAndChangesNothing() {
        var ring = RingBuffer(minimumCapacity: 8, maximumCapacity: 16)
        #expect(append(&ring, [UInt8](repeating: 1, count: 10)))
        #expect(!append(&ring, [UInt8](repeating: 2, count: 7)))
        #expect(ring.readableBytes == 10)
        #expect(append(&ring, [UInt8](repeating: 3, count: 6)))
        #expect(ring.readableBytes == 16)
        #expect(ring.writableBytes == 0)
    }

    @Test func growthPreservesOrderOfWrappedBytes() {
        var ring = RingBuffer(minimumCapacity: 8, maximumCapacity: 64)
        ring.append(Array(0..<8 as Range<UInt8>))
        ring.consume(5)
        ring.append(Array(8..<13 as Range<UInt8>))  // wraps inside the 8-byte ring
        ring.append(Array(13..<40 as Range<UInt8>)) // forces growth to 32, then 64
        #expect(ring.capacity == 64)
        #expect(ring.bytes() == Array(5..<40 as Range<UInt8>))
    }

    @Test func shrinkKeepsDataAndRespectsMinimum() {
        var ring = RingBuffer(minimumCapacity: 8, maximumCapacity: 1024)
        ring.append([UInt8](repeating: 7, count: 1000))
        #expect(ring.capacity == 1024)
        ring.consume(995)
        ring.shrink()
        #expect(ring.capacity == 16)
        #expect(ring.bytes() == [7, 7, 7, 7, 7])
        ring.consume(5)
        ring.shrink()
        #expect(ring.capacity == 8)
        ring.shrink(releaseWhenEmpty: true)
        #expect(ring.capacity == 0)
        #expect(append(&ring, [1, 2, 3]))
        #expect(ring.bytes() == [1, 2, 3])
    }

    @Test func writableRegionsCommitOnlyWhatWasWritten() {
        var ring = RingBuffer(minimumCapacity: 16, maximumCapacity: 16)
        ring.append([UInt8](repeating: 0, count: 10))
        ring.consume(6)            // head 6, 4 readable, tail at 10
        let n = ring.withWritableRegions { a, b in
            #expect(a.count == 6)  // 10..<16
            #expect(b.count == 6)  // 0..<6
            for i in 0..<a.count { a[i] = 0xAA }
            b[0] = 0xBB
            return a.count + 1
        }
        #expect(n == 7)
        #expect(ring.readableBytes == 11)
        #expect(ring.byte(at: 10) == 0xBB)
    }

    @Test func mutableRegionsRewriteInPlace() {
        var ring = RingBuffer(minimumCapacity: 8, maximumCapacity: 8)
        ring.append([1, 2, 3, 4, 5, 6])
        ring.consume(5)
        ring.append([7, 8, 9, 10])   // readable: 6,7,8,9,10 wrapping after 6,7,8
        ring.withMutableReadableRegions(from: 1, count: 4) { a, b in
            for i in 0..<a.count { a[i] ^= 0xFF }
            for i in 0..<b.count { b[i] ^= 0xFF }
        }
        #expect(ring.bytes() == [6, ~7, ~8, ~9, ~10])
    }

    @Test func randomizedAgainstAnArrayModel() {
        var generator = Xorshift.logged()
        var ring = RingBuffer(minimumCapacity: 4, maximumCapacity: 256)
        var model: [UInt8] = []
        var next: UInt8 = 0
        for _ in 0..<20_000 {
            if Bool.random(using: &generator) {
                let n = Int.random(in: 0...40, using: &generator)
                let chunk = (0..<n).map { _ -> UInt8 in next &+= 1; return next }
                let fits = model.count + n <= 256
                #expect(append(&ring, chunk) == fits)
                if fits { model += chunk }
            } else {
                let n = Int.random(in: 0...model.count, using: &generator)
                ring.consume(n)
                model.removeFirst(n)
                if Int.random(in: 0..<10, using: &generator) == 0 { ring.shrink() }
            }
            #expect(ring.readableBytes == model.count)
            // Growth moves one piece of wrapped contents: a misplaced byte shows before it is consumed.
            if model.count > 0 && ring.capacity > 0 && Int.random(in: 0..<8, using: &generator) == 0 { #expect(ring.bytes() == model) }
        }
        #expect(ring.bytes() == model)
    }

    /// Wrapped contents whose front piece is the smaller one: growth moves that piece to the new end.
    @Test func growthMovesTheSmallerPieceOfWrappedContents() {
        var ring = RingBuffer(minimumCapacity: 16, maximumCapacity: 64)
        #expect(append(&ring, Array(0..<16 as Range<UInt8>)))
        ring.consume(14)                                         // front piece: 14, 15
        #expect(append(&ring, Array(16..<26 as Range<UInt8>)))   // wrapped piece: 16..<26 at [0, 10)
        #expect(append(&ring, Array(26..<36 as Range<UInt8>)))   // grows to 32
        #expect(ring.capacity == 32)
        #expect(ring.bytes() == Array(14..<36 as Range<UInt8>))
        #expect(ring.byte(at: 1) == 15 && ring.byte(at: 2) == 16)
    }

    /// Past 1 MiB a ring grows by a quarter in 64 KiB units, not by doubling: its pages all become
    /// resident as contents wrap, so a doubled ring cost up to twice what it held.
    @Test func largeRingsGrowByAQuarterAndWrapAtAnyCapacity() {
        var ring = RingBuffer(minimumCapacity: 4096, maximumCapacity: 8 << 20)
        let pattern = (0..<(2 << 20)).map { UInt8(truncatingIfNeeded: $0 % 251) }
        #expect(append(&ring, Array(pattern[..<(1 << 20)])))
        #expect(ring.capacity == 1 << 20)
        ring.consume(512 << 10)
        #expect(append(&ring, Array(pattern[(1 << 20)..<((1 << 20) + (768 << 10))])))
        #expect(ring.capacity == (1 << 20) + (256 << 10))      // not 2 MiB
        // The contents now wrap at 1.25 MiB.
        let expected = Array(pattern[(512 << 10)..<((1 << 20) + (768 << 10))])
        ring.withReadableRegions { a, b in #expect(a.count == 768 << 10 && b.count == 512 << 10) }
        #expect(ring.bytes() == expected)
        ring.consume(1 << 20)
        #expect(ring.bytes() == Array(expected[(1 << 20)...]))
        #expect(RingBuffer.capacity(toHold: (5 << 20) + 1, growingFrom: 4 << 20) == (5 << 20) + (64 << 10))
        #expect(RingBuffer.capacity(toHold: (4 << 20) + 1, growingFrom: 4 << 20) == 5 << 20)
    }

    /// `#expect` cannot call a mutating method on a noncopyable value directly.
    private func append(_ ring: inout RingBuffer, _ bytes: [UInt8]) -> Bool { ring.append(bytes) }
}
