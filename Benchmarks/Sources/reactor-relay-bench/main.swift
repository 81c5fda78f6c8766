import Dispatch
import Glibc
import Foundation
import Reactor
import TLS

// Loopback stream throughput of one relay hop: source → relay → sink, where the relay is either
// a plain blocking read/write copy thread (the baseline) or the reactor's StreamRelay on one
// loop; plus the same hop with TLS added: the relay encrypts (TLSStream client) towards a
// terminator on a second loop that decrypts (TLSStream server) and relays to the sink. Prints
// MB/s, the relay loop's CPU seconds per GiB, and the ratio to the baseline, as the median of R
// alternating runs. `openssl speed -evp aes-128-gcm` is the ceiling for the TLS row.
//
// usage: reactor-relay-bench [MiB per run, default 1024] [runs, default 3]

let arguments = CommandLine.arguments
let totalBytes = (arguments.count > 1 ? Int(arguments[1])! : 1024) << 20
let runs = arguments.count > 2 ? Int(arguments[2])! : 3
let chunkSize = 256 * 1024

struct Measurement {
    var seconds: Double
    var relayCPUSeconds: Double
    var megabytesPerSecond: Double { Double(totalBytes) / 1e6 / seconds }
    var cpuSecondsPerGiB: Double { relayCPUSeconds / (Double(totalBytes) / Double(1 << 30)) }
}

func threadCPUSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { print("reactor-relay-bench: \(message()) (errno \(errno))"); exit(1) }
}

func listeningSocket() -> (fd: Int32, port: UInt16) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var storage = sockaddr_in()
    storage.sin_family = sa_family_t(AF_INET)
    storage.sin_addr.s_addr = inet_addr("127.0.0.1")
    let bound = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    check(bound == 0 && listen(fd, 16) == 0, "bind/listen")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    return (fd, UInt16(bigEndian: storage.sin_port))
}

func connectTo(port: UInt16) -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let rc = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    check(rc == 0, "connect")
    return fd
}

func writeAll(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Bool {
    var offset = 0
    while offset < count {
        let n = send(fd, buffer + offset, count - offset, Int32(MSG_NOSIGNAL))
        if n <= 0 { return false }
        offset += n
    }
    return true
}

/// Sink: accepts one connection and reads until `totalBytes` arrived; returns when done.
func startSink() -> (port: UInt16, done: DispatchSemaphore) {
    let (listenFD, port) = listeningSocket()
    let done = DispatchSemaphore(value: 0)
    RawThread.start {
        let fd = accept(listenFD, nil, nil)
        close(listenFD)
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunkSize, alignment: 16)
        var received = 0
        while received < totalBytes {
            let n = recv(fd, buffer, chunkSize, 0)
            check(n > 0, "sink recv after \(received) bytes")
            received += n
        }
        buffer.deallocate()
        close(fd)
        done.signal()
    }
    return (port, done)
}

/// Source: connects to `port` and writes `totalBytes`.
func runSource(port: UInt16) {
    RawThread.start {
        let fd = connectTo(port: port)
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunkSize, alignment: 16)
        buffer.initializeMemory(as: UInt8.self, repeating: 0x5A, count: chunkSize)
        var sent = 0
        while sent < totalBytes {
            let n = min(chunkSize, totalBytes - sent)
            check(writeAll(fd, buffer, n), "source send")
            sent += n
        }
        buffer.deallocate()
        shutdown(fd, Int32(SHUT_WR))
        close(fd)
    }
}

func measureBlockingCopy() -> Measurement {
    let sink = startSink()
    let (listenFD, relayPort) = listeningSocket()
    let cpu = CPUBox()
    RawThread.start {
        let inbound = accept(listenFD, nil, nil)
        close(listenFD)
        let outbound = connectTo(port: sink.port)
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunkSize, alignment: 16)
        let start = threadCPUSeconds()
        while true {
            let n = recv(inbound, buffer, chunkSize, 0)
            if n <= 0 { break }
            check(writeAll(outbound, buffer, n), "copy send")
        }
        cpu.seconds = threadCPUSeconds() - start
        buffer.deallocate()
        close(inbound)
        close(outbound)
    }
    let start = MonotonicClock.now()
    runSource(port: relayPort)
    sink.done.wait()
    let seconds = Double(MonotonicClock.now() - start) / 1e9
    usleep(50_000)  // let the copy thread record its CPU time
    return Measurement(seconds: seconds, relayCPUSeconds: cpu.seconds)
}

func measureReactorRelay(group: ReactorGroup) -> Measurement {
    let loop = group.loops[0]
    let sink = startSink()
    let sinkAddress = try! SocketAddress("127.0.0.1:\(sink.port)")
    let listener = try! loop.runBlocking { () throws(SocketError) -> Listener in
        try loop.listen(on: SocketAddress("127.0.0.1:0")) { inbound in
            loop.connect(to: sinkAddress) { result in
                guard case .success(let outbound) = result else { return inbound.close() }
                _ = StreamRelay(inbound, outbound)
            }
        }
    }
    let relayPort = listener.address.port
    let cpuBefore = loop.runBlocking { threadCPUSeconds() }
    let start = MonotonicClock.now()
    runSource(port: relayPort)
    sink.done.wait()
    let seconds = Double(MonotonicClock.now() - start) / 1e9
    let cpuAfter = loop.runBlocking { threadCPUSeconds() }
    loop.runBlocking { listener.close() }
    return Measurement(seconds: seconds, relayCPUSeconds: cpuAfter - cpuBefore)
}

/// A throw-away CA and server certificate from Scripts/make-test-pki.sh.
func makeTLSContexts() -> (client: TLSContext, server: TLSContext) {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bench-pki-\(getpid())").path
    let script = ["Scripts/make-test-pki.sh", "../Scripts/make-test-pki.sh"].first { FileManager.default.fileExists(atPath: $0) }
    check(script != nil, "run from the repository root (Scripts/make-test-pki.sh not found)")
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/bash")
    process.arguments = [script!, directory]
    try! process.run()
    process.waitUntilExit()
    var client = TLSConfiguration.client(serverName: "localhost")
    client.caFile = directory + "/ca.pem"
    return (try! TLSContext(client), try! TLSContext(.server(certificateChainFile: directory + "/server.pem", privateKeyFile: directory + "/server.key")))
}

/// source → relay (loop 0, encrypts) → TLS terminator (loop 1, decrypts) → sink.
func measureTLSRelay(group: ReactorGroup, contexts: (client: TLSContext, server: TLSContext)) -> Measurement {
    let relayLoop = group.loops[0], terminatorLoop = group.loops[1]
    let sink = startSink()
    let sinkAddress = try! SocketAddress("127.0.0.1:\(sink.port)")
    let terminator = try! terminatorLoop.runBlocking { () throws(SocketError) -> Listener in
        try terminatorLoop.listen(on: SocketAddress("127.0.0.1:0")) { encrypted in
            terminatorLoop.connect(to: sinkAddress) { result in
                guard case .success(let plain) = result else { return encrypted.close() }
                _ = StreamRelay(try! TLSStream(wrapping: encrypted, context: contexts.server, role: .server), plain)
            }
        }
    }
    let terminatorAddress = terminator.address
    let listener = try! relayLoop.runBlocking { () throws(SocketError) -> Listener in
        try relayLoop.listen(on: SocketAddress("127.0.0.1:0")) { inbound in
            relayLoop.connect(to: terminatorAddress) { result in
                guard case .success(let outbound) = result else { return inbound.close() }
                _ = StreamRelay(inbound, try! TLSStream(wrapping: outbound, context: contexts.client, role: .client))
            }
        }
    }
    let cpuBefore = relayLoop.runBlocking { threadCPUSeconds() }
    let start = MonotonicClock.now()
    runSource(port: listener.address.port)
    sink.done.wait()
    let seconds = Double(MonotonicClock.now() - start) / 1e9
    let cpuAfter = relayLoop.runBlocking { threadCPUSeconds() }
    relayLoop.runBlocking { listener.close() }
    terminatorLoop.runBlocking { terminator.close() }
    return Measurement(seconds: seconds, relayCPUSeconds: cpuAfter - cpuBefore)
}

final class CPUBox: @unchecked Sendable {  // written by the copy thread before the sink finishes; read after a pause
    var seconds = 0.0
}

enum RawThread {
    private final class Body: @unchecked Sendable {  // owned by exactly one new thread
        let run: () -> Void
        init(_ run: @escaping () -> Void) { self.run = run }
    }
    static func start(_ body: @escaping @Sendable () -> Void) {
        var thread = pthread_t()
        pthread_create(&thread, nil, { raw in
            Unmanaged<Body>.fromOpaque(raw!).takeRetainedValue().run()
            return nil
        }, Unmanaged.passRetained(Body(body)).toOpaque())
        pthread_detach(thread)
    }
}

func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
func fixed(_ value: Double, _ digits: Int = 2) -> String {
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let rounded = (value * scale).rounded() / scale
    return "\(rounded)"
}
func pad(_ text: String, _ width: Int) -> String { text.count >= width ? text : text + String(repeating: " ", count: width - text.count) }

let group = try ReactorGroup(loopCount: 2)
let tls = makeTLSContexts()
var baseline: [Measurement] = []
var reactor: [Measurement] = []
var encrypted: [Measurement] = []
print("relay of \(totalBytes >> 20) MiB over loopback, \(runs) run(s) each, alternating…")
for run in 1...runs {
    baseline.append(measureBlockingCopy())
    reactor.append(measureReactorRelay(group: group))
    encrypted.append(measureTLSRelay(group: group, contexts: tls))
    print("  run \(run): blocking copy \(Int(baseline.last!.megabytesPerSecond)) MB/s, reactor relay \(Int(reactor.last!.megabytesPerSecond)) MB/s, TLS relay \(Int(encrypted.last!.megabytesPerSecond)) MB/s")
}
group.shutdown()

let baseRate = median(baseline.map(\.megabytesPerSecond))
print("")
print(pad("relay", 22) + pad("MB/s", 10) + pad("CPU s/GiB", 12) + "ratio")
for (name, rows) in [("blocking copy", baseline), ("reactor StreamRelay", reactor), ("reactor relay + TLS", encrypted)] {
    let rate = median(rows.map(\.megabytesPerSecond))
    print(pad(name, 22) + pad("\(Int(rate))", 10) + pad(fixed(median(rows.map(\.cpuSecondsPerGiB)), 3), 12) + fixed(rate / baseRate))
}
