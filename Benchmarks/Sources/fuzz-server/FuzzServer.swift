import HTTP
import Reactor
import RemoteDialer
import Tunnel
import FuzzSupport

// libFuzzer entry point for the whole server: HTTP connections, the WebSocket upgrade, a tunnel
// session and the /client/... proxy route, over in-memory streams. Build and run with
// Scripts/fuzz.sh. Each input opens a session "fuzz" (stream A) and a requester (stream B),
// then plays operations: an op byte (2 bits: what, 6 bits: length, 63 = next byte is the
// length) and its payload:
//   0: a client WebSocket frame carrying the payload as one tunnel message, on A
//   1: raw bytes on A (broken frames)
//   2: raw bytes on B (HTTP requests, pipelined, partial, malformed)
//   3: B ends (EOF, then close) and a new B starts with a proxy request through "fuzz"
// The server must never trap; every stream is closed at the end of the input.

private let group = try! ReactorGroup(loopCount: 1, name: "fuzz-server")
private let loop = group.next()
nonisolated(unsafe) private var responder: HTTPServerConnection.Responder?  // set and used on `loop` only

private func makeResponder() -> HTTPServerConnection.Responder {
    var options = ServerOptions()
    options.tunnel.maxBufferedInbound = 1 << 20
    let server = RemoteDialerServer(loop: loop, options: options)
    let route = ClientRoute(server: server)
    var router = HTTPRouter()
    router.add("/connect") { server.handleConnect($0) }
    router.add(prefix: ClientRoute.prefix) { route.handle($0) }
    router.add("/healthz") { $0.respond(.ok, body: "ok\n") }
    return { [router] in router.route($0) }
}

private func clientFrame(_ payload: UnsafeRawBufferPointer) -> [UInt8] {
    var frame: [UInt8] = [0x82]
    if payload.count < 126 { frame.append(0x80 | UInt8(payload.count)) } else { frame += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)] }
    return frame + [0, 0, 0, 0] + Array(payload)  // a zero masking key leaves the payload as is
}

private func serve(_ stream: MemoryStream) {
    guard let responder else { return }
    HTTPServerConnection(stream: stream, respond: responder).start()
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzServer(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: size)
    loop.runBlocking {
        if responder == nil { responder = makeResponder() }
        let session = MemoryStream(loop: loop)
        serve(session)
        session.feed(Array(("GET /connect HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
                            "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nX-Tunnel-ID: fuzz\r\n\r\n").utf8))
        var requester = MemoryStream(loop: loop)
        serve(requester)
        var offset = 0
        while offset < input.count {
            let op = input[offset]
            offset += 1
            var length = Int(op & 0x3F)
            if length == 0x3F, offset < input.count {
                length = Int(input[offset]) * 4
                offset += 1
            }
            let payload = UnsafeRawBufferPointer(rebasing: input[offset..<min(offset + length, input.count)])
            offset += payload.count
            switch op >> 6 {
            case 0: session.feed(clientFrame(payload))
            case 1: session.feed(payload)
            case 2: requester.feed(payload)
            default:
                requester.end()
                requester.close()
                requester = MemoryStream(loop: loop)
                serve(requester)
                requester.feed(Array("GET /client/fuzz/http/127.0.0.1:1/\(payload.count) HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
                requester.feed(payload)
            }
        }
        for stream in [requester, session] {
            stream.end()
            stream.close()
        }
    }
    // Deferred closes and their callbacks run after the batch above.
    loop.runBlocking {}
    loop.runBlocking {}
    return 0
}
