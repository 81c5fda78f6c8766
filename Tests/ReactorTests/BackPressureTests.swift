import Dispatch
import Glibc
import Testing
@testable import Reactor

@Suite(.serialized) struct BackPressureTests {
    /// A fast producer floods a relay whose outgoing peer reads slowly: the relay's write queue
    /// must never hold more than its high watermark plus one read's worth.
    @Test func slowReaderBoundsTheWriteQueue() throws {
        let total = 24 << 20
        var options = ConnectionOptions()
        options.writeHighWatermark = 256 * 1024
        options.writeLowWatermark = 64 * 1024
        options.readBufferMaximum = 64 * 1024

        let group = try ReactorGroup(loopCount: 1)
        defer { group.shutdown() }
        let loop = group.loops[0]

        // The slow sink: a blocking socket read 16 KiB at a time with pauses.
        let sinkListen = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(sinkListen) }
        var sinkAddress = try SocketAddress("127.0.0.1:0")
        _ = sinkAddress.withSockAddr { bind(sinkListen, $0, $1) }
        listen(sinkListen, 1)
        sinkAddress = try #require(Syscall.localAddress(sinkListen))
        let sinkSum = OneShot<[UInt64]>()
        let sinkDone = spawnThread {
            let fd = accept(sinkListen, nil, nil)
            var size: Int32 = 16 * 1024  // a small kernel buffer makes the back-pressure reach us quickly
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
            var sum = StreamChecksum()
            var buffer = [UInt8](repeating: 0, count: 16 * 1024)
            while true {
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n <= 0 { break }
                buffer.withUnsafeBytes { sum.update(UnsafeRawBufferPointer(rebasing: $0[..<n])) }
                usleep(200)
            }
            close(fd)
            sinkSum.set(sum.value)
        }

        let stats = OneShot<StreamRelay.Statistics>()
        var listenOptions = ListenOptions()
        listenOptions.connection = options
        let relayPort = try loop.runBlocking { () throws(SocketError) -> UInt16 in
            let listener = try loop.listen(on: SocketAddress("127.0.0.1:0"), options: listenOptions) { source in
                var connect = ConnectOptions()
                connect.connection = options
                // A is not started (not read) until B is connected and the relay takes over.
                loop.connect(to: sinkAddress, options: connect) { result in
                    guard case .success(let sink) = result else { return source.close() }
                    var relay: StreamRelay?
                    relay = StreamRelay(source, sink) { _ in stats.set(relay!.statistics) }
                }
            }
            return listener.address.port
        }

        // The fast producer: a blocking socket writing as fast as the relay lets it.
        let sentSum = OneShot<[UInt64]>()
        let producerDone = spawnThread {
            let fd = blockingConnect(port: relayPort)
            var stream = RandomBytes(seed: 7)
            var sum = StreamChecksum()
            var chunk = [UInt8](repeating: 0, count: 256 * 1024)
            var sent = 0
            while sent < total {
                chunk.withUnsafeMutableBytes { raw in
                    stream.fill(raw)
                    sum.update(UnsafeRawBufferPointer(raw))
                    var offset = 0
                    while offset < raw.count {
                        let n = send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                        precondition(n > 0, "producer send failed")
                        offset += n
                    }
                }
                sent += chunk.count
            }
            close(fd)
            sentSum.set(sum.value)
        }
        #expect(producerDone.wait(timeout: .now() + 120) == .success)
        #expect(sinkDone.wait(timeout: .now() + 120) == .success)
        #expect(sentSum.wait() == sinkSum.wait())
        let statistics = try #require(stats.wait())
        let (maxQueued, pauses) = (statistics.maxQueued, statistics.pauses)
        #expect(pauses > 0, "the slow reader never made the relay pause its source")
        #expect(maxQueued <= options.writeHighWatermark + options.readBufferMaximum,
                "write queue reached \(maxQueued) bytes")
    }
}

