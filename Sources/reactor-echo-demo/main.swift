import Glibc
import Reactor

// An echo server on the reactor plus clients that prove it: each client streams a known byte
// pattern through the server and checks every byte that comes back.

let clientCount = 8
let bytesPerClient = 64 << 20

/// Echoes, pausing its own reads while its write queue is full.
final class Echo: StreamHandler {
    func streamDidRead(_ connection: any ByteStream, _ buffer: inout RingBuffer) {
        buffer.withReadableRegions { a, b in _ = connection.write(a, b) }
        buffer.consume(buffer.readableBytes)
        if !connection.isWritable { connection.pauseReading() }
    }
    func streamWritabilityDidChange(_ connection: any ByteStream, isWritable: Bool) {
        if isWritable { connection.resumeReading() }
    }
    func streamDidReadEOF(_ connection: any ByteStream) { connection.closeAfterFlush() }
    func streamDidClose(_ connection: any ByteStream, error: (any Error)?) {}
}

/// Byte `i` of every client's stream; cheap to generate and to check.
@inline(__always) func patternByte(_ i: Int) -> UInt8 { UInt8(truncatingIfNeeded: i &* 131 &+ (i >> 11)) }

final class Client: StreamHandler {
    let index: Int
    let finished: (Int, String?) -> Void
    var sent = 0
    var checked = 0
    var chunk = [UInt8](repeating: 0, count: 64 * 1024)

    init(index: Int, finished: @escaping (Int, String?) -> Void) {
        self.index = index
        self.finished = finished
    }

    func pump(_ connection: any ByteStream) {
        while sent < bytesPerClient && connection.isWritable {
            let n = min(chunk.count, bytesPerClient - sent)
            for i in 0..<n { chunk[i] = patternByte(sent + i) }
            chunk.withUnsafeBytes { _ = connection.write(UnsafeRawBufferPointer(rebasing: $0[..<n])) }
            sent += n
        }
    }

    func streamDidRead(_ connection: any ByteStream, _ buffer: inout RingBuffer) {
        let mismatch = buffer.withReadableRegions { a, b -> Int? in
            for region in [a, b] {
                for byte in region {
                    if byte != patternByte(checked) { return checked }
                    checked += 1
                }
            }
            return nil
        }
        buffer.consume(buffer.readableBytes)
        if let mismatch {
            connection.close()
            return finished(index, "byte \(mismatch) differs")
        }
        if checked == bytesPerClient {
            connection.close()
            finished(index, nil)
        }
    }
    func streamWritabilityDidChange(_ connection: any ByteStream, isWritable: Bool) {
        if isWritable { pump(connection) }
    }
    func streamDidClose(_ connection: any ByteStream, error: (any Error)?) {
        if let error { finished(index, "\(error)") }
    }
}

/// Collects results from the client loop; the main thread waits on it.
final class Results: @unchecked Sendable {  // guarded by `mutex`
    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()
    private var outcomes: [Int: String?] = [:]
    init() { pthread_mutex_init(&mutex, nil); pthread_cond_init(&condition, nil) }
    func record(_ index: Int, _ error: String?) {
        pthread_mutex_lock(&mutex)
        if outcomes[index] == nil { outcomes[index] = .some(error) }
        pthread_cond_signal(&condition)
        pthread_mutex_unlock(&mutex)
    }
    func waitForAll(_ count: Int) -> [Int: String?] {
        pthread_mutex_lock(&mutex)
        while outcomes.count < count { pthread_cond_wait(&condition, &mutex) }
        defer { pthread_mutex_unlock(&mutex) }
        return outcomes
    }
}

let group = try ReactorGroup()
let listener = try group.listen(on: SocketAddress("127.0.0.1:0")) { $0.start(handler: Echo()) }
print("echo server listening on \(listener.address) with \(group.loops.count) loop(s)")
print("\(clientCount) clients each send \(bytesPerClient >> 20) MiB and verify every echoed byte…")

let results = Results()
let start = MonotonicClock.now()
for index in 0..<clientCount {
    let loop = group.next()
    loop.execute {
        loop.connect(to: listener.address) { result in
            switch result {
            case .success(let connection):
                let client = Client(index: index, finished: results.record)
                connection.start(handler: client)
                client.pump(connection)
            case .failure(let error):
                results.record(index, "\(error)")
            }
        }
    }
}
let outcomes = results.waitForAll(clientCount)
let seconds = Double(MonotonicClock.now() - start) / 1e9
listener.close()
group.shutdown()

let failures = outcomes.filter { $0.value != nil }
for (index, error) in failures.sorted(by: { $0.key < $1.key }) { print("client \(index): FAILED: \(error!)") }
let megabytes = Double(clientCount * bytesPerClient) / 1e6
print("echoed \(Int(megabytes)) MB in \((seconds * 100).rounded() / 100) s (\(Int(megabytes / seconds)) MB/s each way); \(clientCount - failures.count)/\(clientCount) clients verified")
exit(failures.isEmpty ? 0 : 1)
