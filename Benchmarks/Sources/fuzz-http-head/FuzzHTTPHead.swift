import HTTP
import Reactor

// libFuzzer entry point for the HTTP head parser and body decoder. Build and run with
// Scripts/fuzz.sh.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTPHead(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: size)
    var limits = HTTPLimits()
    limits.maxHeadBytes = 4096
    var ring = RingBuffer(minimumCapacity: 64, maximumCapacity: 1 << 16)
    guard ring.append(input) else { return 0 }
    var parser = HTTPHeadParser(limits: limits)
    do {
        if size > 0 && input[0] & 1 == 0 {
            guard let head = try parser.parseRequest(&ring) else { return 0 }
            var body = HTTPBodyDecoder(framing: try HTTPBodyFraming.of(request: head), limits: limits)
            _ = try body.decode(&ring) { _ in }
        } else {
            guard let head = try parser.parseResponse(&ring) else { return 0 }
            var body = HTTPBodyDecoder(framing: try HTTPBodyFraming.of(response: head, requestMethod: "GET"), limits: limits)
            _ = try body.decode(&ring) { _ in }
        }
    } catch {
        return 0
    }
    return 0
}
