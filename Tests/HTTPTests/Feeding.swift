import HTTP
import Reactor
@_exported import TestSupport

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
