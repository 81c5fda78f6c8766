import Glibc
import Reactor

// Helpers shared by the test targets (a plain library target: test targets cannot depend on
// each other).

/// Echoes everything back, pausing its reads while its own write side is full.
public final class EchoHandler: StreamHandler {
    public init() {}
    public func streamDidRead(_ stream: any ByteStream, _ buffer: inout RingBuffer) {
        buffer.withReadableRegions { a, b in _ = stream.write(a, b) }
        buffer.consume(buffer.readableBytes)
        if !stream.isWritable { stream.pauseReading() }
    }
    public func streamWritabilityDidChange(_ stream: any ByteStream, isWritable: Bool) {
        if isWritable { stream.resumeReading() }
    }
    public func streamDidReadEOF(_ stream: any ByteStream) { stream.closeAfterFlush() }
    public func streamDidClose(_ stream: any ByteStream, error: (any Error)?) {}
}

/// Number of open file descriptors of this process.
public func openFileDescriptorCount() -> Int {
    guard let dir = opendir("/proc/self/fd") else { return -1 }
    defer { closedir(dir) }
    var count = 0
    while readdir(dir) != nil { count += 1 }
    return count - 3  // ".", "..", and the directory stream itself
}

/// Ways to cut `bytes` into pieces: one byte at a time, and in two at every cut point.
public func cuttings(_ bytes: [UInt8]) -> [[[UInt8]]] {
    var result: [[[UInt8]]] = [bytes.map { [$0] }]
    for cut in 0...bytes.count { result.append([Array(bytes[..<cut]), Array(bytes[cut...])]) }
    return result
}

/// A blocking loopback TCP connection to `port`, or nil if nothing accepts there.
public func connectLoopback(port: UInt16) -> Int32? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let rc = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard rc == 0 else { close(fd); return nil }
    return fd
}
