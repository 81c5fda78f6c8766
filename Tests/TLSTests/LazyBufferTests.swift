import Testing
@testable import TLS

@Suite struct LazyBufferTests {
    /// Nothing is allocated until asked for; the same storage comes back until released; after
    /// a release the next use allocates afresh.
    @Test func allocatesOnFirstUseAndFreesOnRelease() {
        var buffer = LazyBuffer(size: 1000)
        #expect(buffer.allocatedBytes == 0)
        let first = buffer.bytes()
        first.storeBytes(of: 42, toByteOffset: 999, as: UInt8.self)
        #expect(first.count == 1000 && buffer.allocatedBytes == 1000)
        #expect(buffer.bytes().baseAddress == first.baseAddress)
        #expect(buffer.bytes().load(fromByteOffset: 999, as: UInt8.self) == 42)
        buffer.release()
        #expect(buffer.allocatedBytes == 0)
        buffer.release()
        #expect(buffer.bytes().count == 1000)
    }
}
