import Reactor
import WebSocket

// libFuzzer entry point for the WebSocket frame parser (both roles, small message limit so
// oversized claims are exercised). Build and run with Scripts/fuzz.sh.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFrameParser(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: size)
    for role in [WebSocketRole.server, .client] {
        var ring = RingBuffer(minimumCapacity: 64, maximumCapacity: 1 << 16)
        var parser = FrameParser(role: role, maxMessageSize: 4096)
        // Feed in two pieces cut where the first byte says, to cross piece boundaries.
        let cut = size > 0 ? Int(input[0]) % (size + 1) : 0
        for piece in [UnsafeRawBufferPointer(rebasing: input[..<cut]), UnsafeRawBufferPointer(rebasing: input[cut...])] {
            guard ring.append(piece) else { break }
            do {
                try parser.parse(&ring) { _ in true }
            } catch {
                break
            }
        }
    }
    return 0
}
