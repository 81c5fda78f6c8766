@testable import RemoteDialer
import Testing

/// The bandwidth limit's arithmetic, without a loop: refills at its rate, caps at its burst,
/// goes into debt, and waits until half a burst is back.
struct TokenBucketTests {
    let second: UInt64 = 1_000_000_000

    @Test func aFullBucketTakesItsBurstThenWaitsAtTheRate() {
        var bucket = TokenBucket(rate: 10 << 20, now: 0)
        #expect(bucket.burst == 1 << 20)
        bucket.take(1 << 20, now: 0)
        #expect(bucket.isEmpty)
        // Half a burst (512 KiB) at 10 MiB/s: 50 ms.
        #expect(bucket.wait(now: 0) == second / 20)
        bucket.refill(now: second / 20)
        #expect(!bucket.isEmpty)
        #expect(bucket.wait(now: second / 20) == 0)
    }

    @Test func debtIsRepaidBeforeReadingResumesAndRefillStopsAtTheBurst() {
        var bucket = TokenBucket(rate: 256 << 10, now: 0)  // burst: 64 KiB (the minimum)
        bucket.take((64 << 10) + (256 << 10), now: 0)     // one second of debt
        #expect(bucket.tokens == -(256 << 10))
        #expect(bucket.wait(now: 0) == second + second / 8)  // the debt, then 32 KiB
        bucket.refill(now: 10 * second)
        #expect(bucket.tokens == bucket.burst)
    }

    @Test func aNewRateKeepsTheBalanceWithinTheNewBurst() {
        var bucket = TokenBucket(rate: 100 << 20, now: 0)
        bucket.setRate(256 << 10, now: 0)
        #expect(bucket.burst == 64 << 10)
        #expect(bucket.tokens == 64 << 10)
    }
}
