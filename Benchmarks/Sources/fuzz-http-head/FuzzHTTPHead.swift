import HTTP
import Reactor

// libFuzzer entry point for the HTTP head parser and body decoder. Build and run with
// Scripts/fuzz.sh. The first byte picks the mode: a request, a response, or a bare chunked body
// (reached directly: behind a random head the fuzzer would seldom get to the chunk parser).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTPHead(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let mode = data[0] % 3
    let input = UnsafeRawBufferPointer(start: data + 1, count: size - 1)
    var limits = HTTPLimits()
    limits.maxHeadBytes = 4096
    var ring = RingBuffer(minimumCapacity: 64, maximumCapacity: 1 << 16)
    guard ring.append(input) else { return 0 }
    var parser = HTTPHeadParser(limits: limits)
    do {
        let framing: HTTPBodyFraming
        switch mode {
        case 0:
            guard let head = try parser.parseRequest(&ring) else { return 0 }
            framing = try HTTPBodyFraming.of(request: head)
        case 1:
            guard let head = try parser.parseResponse(&ring) else { return 0 }
            framing = try HTTPBodyFraming.of(response: head, requestMethod: "GET")
        default:
            framing = .chunked
        }
        var body = HTTPBodyDecoder(framing: framing, limits: limits)
        _ = try body.decode(&ring) { _ in }
    } catch {
        return 0
    }
    return 0
}
