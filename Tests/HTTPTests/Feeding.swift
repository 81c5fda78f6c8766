import HTTP
import Reactor
@_exported import TestSupport


/// Deterministic pseudo-random numbers for fuzz-style tests (xorshift).
struct Xorshift {
    var state: UInt64
    init(seed: UInt64) { state = seed | 1 }
    mutating func next() -> UInt64 {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        return state
    }
    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(max(1, bound))) }
}

func appendBytes(_ ring: inout RingBuffer, _ bytes: [UInt8]) -> Bool {
    ring.append(bytes)
}

/// A handler that streams the request body back as it arrives (chunked response), with
/// back-pressure both ways.
func echoBody(_ exchange: HTTPServerExchange) {
    exchange.writeHead(HTTPResponseHead(status: .ok))
    exchange.onBodyPiece = { piece in
        exchange.writeBody(piece)
        if !exchange.isWritable { exchange.pauseBody() }
    }
    exchange.onWritable = { exchange.resumeBody() }
    exchange.onBodyEnd = { exchange.end() }
    if exchange.bodyComplete { exchange.end() }
}
