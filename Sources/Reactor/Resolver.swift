import Dispatch
import Glibc

/// Turns `host:port` into socket addresses without ever blocking an event loop: IP literals are
/// parsed in place; host names go to getaddrinfo on a background queue and the answer comes back
/// to the loop through `execute`.
public enum Resolver {
    /// Resolves `host` (and `port`) and calls `completion` on `loop`.
    public static func resolve(
        host: String, port: UInt16, on loop: EventLoop,
        _ completion: @escaping @Sendable (Result<[SocketAddress], SocketError>) -> Void
    ) {
        if let literal = SocketAddress(ipLiteral: host, port: port) {
            loop.execute { completion(.success([literal])) }
            return
        }
        DispatchQueue.global().async {
            let result = lookup(host: host, port: port)
            loop.execute { completion(result) }
        }
    }

    /// The blocking lookup; only ever called off-loop.
    static func lookup(host: String, port: UInt16) -> Result<[SocketAddress], SocketError> {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_ADDRCONFIG
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0 else {
            return .failure(SocketError(.resolution("lookup \(host): \(String(cString: gai_strerror(rc)))"), operation: "dial"))
        }
        defer { freeaddrinfo(list) }
        var addresses: [SocketAddress] = []
        var cursor = list
        while let entry = cursor {
            if let sa = entry.pointee.ai_addr, let address = SocketAddress(sa, length: entry.pointee.ai_addrlen) {
                addresses.append(address)
            }
            cursor = entry.pointee.ai_next
        }
        // IPv4 first: loopback services here listen on 127.0.0.1 far more often than on ::1.
        addresses.sort { $0.family == AF_INET && $1.family != AF_INET }
        return addresses.isEmpty
            ? .failure(SocketError(.resolution("lookup \(host): no such host"), operation: "dial"))
            : .success(addresses)
    }
}
