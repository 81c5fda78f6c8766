import CSystem
import Glibc

/// Thin wrappers over the socket system calls the reactor uses: EINTR retried, EAGAIN reported
/// as zero bytes, MSG_NOSIGNAL on every send so a dead peer yields EPIPE, never SIGPIPE.
enum Syscall {
    /// Sends two regions (either may be empty) with one sendmsg. Returns bytes written (0 on EAGAIN).
    static func send(_ fd: Int32, _ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer) -> Result<Int, SocketError> {
        var iov = (iovec(iov_base: UnsafeMutableRawPointer(mutating: first.baseAddress), iov_len: first.count),
                   iovec(iov_base: UnsafeMutableRawPointer(mutating: second.baseAddress), iov_len: second.count))
        return withUnsafeMutableBytes(of: &iov) { raw in
            let vector = UnsafeMutableBufferPointer(start: raw.baseAddress!.assumingMemoryBound(to: iovec.self), count: 2)
            return send(fd, vector: first.count == 0 ? UnsafeMutableBufferPointer(rebasing: vector[1...]) : second.count == 0 ? UnsafeMutableBufferPointer(rebasing: vector[..<1]) : vector)
        }
    }

    /// Gathers every iovec into one sendmsg. Returns bytes written (0 on EAGAIN).
    static func send(_ fd: Int32, vector: UnsafeMutableBufferPointer<iovec>) -> Result<Int, SocketError> {
        if vector.isEmpty || vector.allSatisfy({ $0.iov_len == 0 }) { return .success(0) }
        var message = msghdr()
        message.msg_iov = vector.baseAddress
        message.msg_iovlen = vector.count
        while true {
            let n = sendmsg(fd, &message, Int32(MSG_NOSIGNAL))
            if n >= 0 { return .success(n) }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK { return .success(0) }
            return .failure(.errno("write"))
        }
    }

    /// Reads into up to two free regions with one readv. Returns bytes read; nil on EAGAIN;
    /// 0 means end of stream.
    static func read(_ fd: Int32, _ first: UnsafeMutableRawBufferPointer, _ second: UnsafeMutableRawBufferPointer) -> Result<Int?, SocketError> {
        var iov = (iovec(iov_base: first.baseAddress, iov_len: first.count),
                   iovec(iov_base: second.baseAddress, iov_len: second.count))
        let count: Int32 = second.count > 0 ? 2 : 1
        return withUnsafeMutableBytes(of: &iov) { raw in
            while true {
                let n = readv(fd, raw.baseAddress!.assumingMemoryBound(to: iovec.self), count)
                if n >= 0 { return .success(n) }
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { return .success(nil) }
                return .failure(.errno("read"))
            }
        }
    }

    /// The pending error of a socket (SO_ERROR), 0 if none.
    static func pendingError(_ fd: Int32) -> Int32 {
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        if getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0 { return errno }
        return error
    }

    static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) {
        var value = value
        _ = setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size))
    }

    /// An integer socket option's value, nil if it cannot be read.
    static func option(_ fd: Int32, _ level: Int32, _ name: Int32) -> Int32? {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        return getsockopt(fd, level, name, &value, &length) == 0 ? value : nil
    }

    /// A nonblocking, close-on-exec TCP socket of `family`.
    static func tcpSocket(family: Int32) -> Result<Int32, SocketError> {
        let fd = socket(family, Int32(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
        return fd >= 0 ? .success(fd) : .failure(.errno("socket"))
    }

    static func localAddress(_ fd: Int32) -> SocketAddress? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        return withUnsafeMutableBytes(of: &storage) { raw in
            getsockname(fd, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), &length) == 0 ? SocketAddress(raw.baseAddress!, length: length) : nil
        }
    }

    static func peerAddress(_ fd: Int32) -> SocketAddress? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        return withUnsafeMutableBytes(of: &storage) { raw in
            getpeername(fd, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), &length) == 0 ? SocketAddress(raw.baseAddress!, length: length) : nil
        }
    }
}
