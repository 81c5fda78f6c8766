import Reactor
import Testing
@testable import HTTP

/// Decodes a body fed in `pieces`; returns the payload, whether it completed, the error, and
/// the bytes left after it.
func decodeBody(_ framing: HTTPBodyFraming, _ pieces: [[UInt8]]) -> (body: [UInt8], complete: Bool, error: HTTPParseError?, rest: [UInt8]) {
    var ring = RingBuffer(minimumCapacity: 16, maximumCapacity: 1 << 20)
    var decoder = HTTPBodyDecoder(framing: framing)
    var body: [UInt8] = []
    var complete = false
    for (index, piece) in pieces.enumerated() {
        _ = appendBytes(&ring, piece)
        do throws(HTTPParseError) {
            complete = try decoder.decode(&ring) { body += $0 }
        } catch {
            return (body, false, error, ring.bytes())
        }
        // What follows the body: the rest of this piece and every later one.
        if complete { return (body, true, nil, ring.bytes() + pieces[(index + 1)...].joined()) }
    }
    return (body, false, nil, ring.bytes())
}

struct HTTPBodyTests {
    @Test func chunkedBodyWithExtensionsAndTrailersAtEveryCutPoint() {
        let wire = Array("5;name=value\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nTrailer: x\r\n\r\nNEXT".utf8)
        for pieces in cuttings(wire) {
            let result = decodeBody(.chunked, pieces)
            #expect(result.error == nil)
            #expect(String(decoding: result.body, as: UTF8.self) == "helloabcdefghijklmnopqrstuvwxyz")
            #expect(result.complete)
            #expect(result.rest == Array("NEXT".utf8))
        }
    }

    @Test func contentLengthBodyStopsAtItsLength() {
        let result = decodeBody(.length(5), [Array("hello".utf8) + Array("GET /".utf8)])
        #expect(result.complete && result.body == Array("hello".utf8) && result.rest == Array("GET /".utf8))
    }

    @Test func contentLengthBodyAtEveryCutPoint() {
        let wire = Array("0123456789abcdefghijGET /next".utf8)
        for pieces in cuttings(wire) {
            let result = decodeBody(.length(20), pieces)
            #expect(result.error == nil && result.complete)
            #expect(result.body == Array(wire[..<20]))
            // Whatever arrived after the body stays for the next request.
            #expect(result.rest == Array(wire[20...]))
        }
    }

    @Test func malformedChunksAreRejected() {
        // A sign or a "0x" prefix is not a chunk size (Int(_:radix:) would take "-5" and "+5").
        for wire in ["zz\r\n", "-5\r\nhello\r\n0\r\n\r\n", "+5\r\nhello\r\n0\r\n\r\n", "0x5\r\nhello\r\n0\r\n\r\n",
                     "1000000000000000\r\n", "5\r\nhelloXX0\r\n\r\n", String(repeating: "f", count: 2000)] {
            #expect(decodeBody(.chunked, [Array(wire.utf8)]).error == .malformedChunk, "\(wire.prefix(20))")
        }
    }

    @Test func framingFollowsRFC9112() throws {
        func request(_ headers: HTTPHeaders) throws(HTTPParseError) -> HTTPBodyFraming {
            try HTTPBodyFraming.of(request: HTTPRequestHead(method: "POST", target: "/", headers: headers))
        }
        #expect(try request([:]) == .none)
        #expect(try request(["Content-Length": "12"]) == .length(12))
        #expect(try request(["Transfer-Encoding": "chunked", "Content-Length": "12"]) == .chunked)
        #expect(try request(["Content-Length": "12", "content-length": "12"]) == .length(12))
        #expect(throws: HTTPParseError.invalidContentLength) { try request(["Content-Length": "12", "Content-Length": "13"]) }
        #expect(throws: HTTPParseError.invalidContentLength) { try request(["Content-Length": "-1"]) }
        #expect(throws: HTTPParseError.unsupportedTransferEncoding) { try request(["Transfer-Encoding": "gzip, chunked"]) }
        #expect(try request(["transfer-encoding": " CHUNKED ", "Content-Length": "12", "Content-Length": "13"]) == .chunked)
        #expect(try request(["Content-Length": "12, 12"]) == .length(12))
        #expect(try request(["Content-Length": ""]) == .none)
        #expect(throws: HTTPParseError.invalidContentLength) { try request(["Content-Length": "12, 13"]) }
        #expect(throws: HTTPParseError.invalidContentLength) { try request(["Content-Length": "1 2"]) }
        #expect(throws: HTTPParseError.invalidContentLength) { try request(["Content-Length": "+12"]) }
        #expect(throws: HTTPParseError.invalidContentLength) { try request(["Content-Length": String(repeating: "9", count: 19)]) }
        #expect(throws: HTTPParseError.unsupportedTransferEncoding) { try request(["Transfer-Encoding": "chunked", "Transfer-Encoding": "chunked"]) }
        #expect(throws: HTTPParseError.unsupportedTransferEncoding) { try request(["Transfer-Encoding": ""]) }
        let noContent = HTTPResponseHead(status: HTTPStatus(204))
        #expect(try HTTPBodyFraming.of(response: noContent, requestMethod: "GET") == .none)
        #expect(try HTTPBodyFraming.of(response: HTTPResponseHead(status: .ok), requestMethod: "HEAD") == .none)
        #expect(try HTTPBodyFraming.of(response: HTTPResponseHead(status: .ok), requestMethod: "GET") == .untilClose)
    }

    @Test func untilCloseEndsAtEOFAndOthersAreTruncated() throws {
        var open = HTTPBodyDecoder(framing: .untilClose)
        try open.finishAtEOF()
        #expect(open.isComplete)
        var short = HTTPBodyDecoder(framing: .length(3))
        #expect(throws: HTTPParseError.bodyTruncated) { try short.finishAtEOF() }
    }

    /// Chunked bodies of random chunk sizes, cut at random points, decode to the original
    /// payload; mutated and random ones end (complete, error or needing more) without growing
    /// the ring and without spinning: every call either consumes bytes or returns.
    @Test func randomChunkedBodiesAtRandomCutPoints() {
        var random = Xorshift(seed: 0xC0FFEE)
        for round in 0..<3_000 {
            var payload: [UInt8] = []
            var wire: [UInt8] = []
            for _ in 0..<random.below(6) {
                let chunk = (0..<(1 + random.below(300))).map { _ in UInt8(truncatingIfNeeded: random.next()) }
                payload += chunk
                let size = String(chunk.count, radix: 16, uppercase: random.below(2) == 0)
                wire += Array((size + (random.below(4) == 0 ? ";ext=1" : "") + "\r\n").utf8) + chunk + [13, 10]
            }
            wire += Array("0\r\n\r\nNEXT".utf8)
            let mutated = round % 3 == 0
            if mutated {
                for _ in 0..<(1 + random.below(4)) {
                    wire[random.below(wire.count)] = [0, 10, 13, 45, 43, 59, 48, 70, UInt8(truncatingIfNeeded: random.next())][random.below(9)]
                }
            }
            var pieces: [[UInt8]] = []
            var offset = 0
            while offset < wire.count {
                let count = min(wire.count - offset, 1 + random.below(80))
                pieces.append(Array(wire[offset..<(offset + count)]))
                offset += count
            }
            let result = decodeBody(.chunked, pieces)
            if !mutated {
                #expect(result.error == nil && result.complete && result.body == payload)
                #expect(result.rest == Array("NEXT".utf8))
            } else {
                // Whatever the outcome, the payload comes from the input and never exceeds it.
                #expect(result.body.count + result.rest.count <= wire.count)
            }
        }
    }
}
