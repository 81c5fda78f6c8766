import Reactor
import Testing
@testable import HTTP

/// Feeds `pieces` into a ring, parsing after each; returns the head and every byte after it
/// (left in the ring or not yet fed), or the error and what was left in the ring.
func parseRequest(_ pieces: [[UInt8]], limits: HTTPLimits = HTTPLimits()) -> (Result<HTTPRequestHead, HTTPParseError>?, [UInt8]) {
    var ring = RingBuffer(minimumCapacity: 16, maximumCapacity: 1 << 20)
    var parser = HTTPHeadParser(limits: limits)
    for (index, piece) in pieces.enumerated() {
        #expect(appendBytes(&ring, piece))
        do throws(HTTPParseError) {
            // What follows the head: the rest of this piece and every later one.
            if let head = try parser.parseRequest(&ring) { return (.success(head), ring.bytes() + pieces[(index + 1)...].joined()) }
        } catch {
            return (.failure(error), ring.bytes())
        }
    }
    return (nil, ring.bytes())
}

struct HTTPHeadParserTests {
    static let get = Array("GET /client/foo/http/127.0.0.1:8125/file?timeout=600&x=1 HTTP/1.1\r\nHost: a\r\nX-Tunnel-ID:  foo \r\nConnection: keep-alive, Upgrade\r\n\r\nBODY".utf8)

    @Test func requestParsesAtEveryCutPoint() {
        for pieces in cuttings(Self.get) {
            let (result, rest) = parseRequest(pieces)
            guard case .success(let head)? = result else { Issue.record("no head for \(pieces.map(\.count))"); continue }
            #expect(head.method == "GET")
            #expect(head.path == "/client/foo/http/127.0.0.1:8125/file")
            #expect(head.queryParameter("timeout") == "600")
            #expect(head.queryParameter("missing") == nil)
            #expect(head.headers["x-tunnel-id"] == "foo")
            #expect(head.headers.containsToken("upgrade", in: "connection"))
            #expect(head.keepAlive)
            // The parser takes the head only; what follows stays (it may be a body).
            #expect(rest == Array("BODY".utf8))
        }
    }

    /// HTTP CONNECT's authority-form target (RFC 9110 §9.3.6), IPv6 included; the tunnelled
    /// bytes a client sends after the head stay in the ring for whoever takes the stream.
    @Test func connectAuthorityFormParsesAtEveryCutPoint() throws {
        for target in ["localhost:8443", "[::1]:22"] {
            for pieces in cuttings(Array("CONNECT \(target) HTTP/1.1\r\nHost: \(target)\r\nProxy-Authorization: Basic Zm9vOmJhcg==\r\n\r\n\u{16}\u{3}\u{1}".utf8)) {
                let (result, rest) = parseRequest(pieces)
                guard case .success(let head)? = result else { Issue.record("no head for \(target) \(pieces.map(\.count))"); continue }
                #expect(head.method == "CONNECT")
                #expect(head.target == target)
                #expect(try HTTPBodyFraming.of(request: head) == .none)
                #expect(rest == [0x16, 0x03, 0x01])
            }
        }
    }

    @Test func bareLineFeedsAndLeadingEmptyLinesAreTolerated() {
        let (result, _) = parseRequest([Array("\r\n\nGET / HTTP/1.0\nConnection: keep-alive\n\n".utf8)])
        guard case .success(let head)? = result else { Issue.record("rejected"); return }
        #expect(head.version == .http10 && head.keepAlive)
    }

    @Test func tabsAndNonASCIIInValuesAreKept() {
        for pieces in cuttings(Array("GET / HTTP/1.1\r\nX-A: one\ttwo\r\nX-B: caf\u{E9}\r\n\r\n".utf8)) {
            let (result, _) = parseRequest(pieces)
            guard case .success(let head)? = result else { Issue.record("rejected \(pieces.map(\.count))"); return }
            #expect(head.headers["x-a"] == "one\ttwo" && head.headers["X-B"] == "caf\u{E9}")
        }
    }

    @Test func pipelinedRequestsComeOutOneAtATimeInOrder() {
        let bytes = Array("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8)
        var ring = RingBuffer(minimumCapacity: 16, maximumCapacity: 4096)
        #expect(appendBytes(&ring, bytes))
        var parser = HTTPHeadParser()
        let first = (try? parser.parseRequest(&ring)) ?? nil
        let second = (try? parser.parseRequest(&ring)) ?? nil
        #expect(first?.target == "/a" && second?.target == "/b")
        #expect(second?.keepAlive == false)
        let left = ring.readableBytes
        #expect(left == 0)
    }

    @Test(arguments: [
        ("GET /\r\n\r\n", HTTPParseError.malformedRequestLine),
        ("GET  / HTTP/1.1\r\n\r\n", .malformedRequestLine),
        ("G(T / HTTP/1.1\r\n\r\n", .malformedRequestLine),
        ("GET / HTTP/2.0\r\n\r\n", .unsupportedVersion),
        ("GET / FTP/1.1\r\n\r\n", .malformedRequestLine),
        ("GET / HTTP/1.1\r\nNoColon\r\n\r\n", .malformedHeader),
        ("GET / HTTP/1.1\r\nName : v\r\n\r\n", .malformedHeader),
        ("GET / HTTP/1.1\r\n: v\r\n\r\n", .malformedHeader),
        ("GET /a\u{01}b HTTP/1.1\r\n\r\n", .malformedRequestLine),
        ("GET /a\tb HTTP/1.1\r\n\r\n", .malformedRequestLine),
        ("GET /a\rb HTTP/1.1\r\n\r\n", .malformedRequestLine),
        ("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", .malformedHeader),
        ("GET / HTTP/1.1\r\nX: a\u{0}b\r\n\r\n", .malformedHeader),
        ("GET / HTTP/1.1\r\nX: a\u{7F}\r\n\r\n", .malformedHeader),
        ("GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n", .malformedHeader),
        ("GET / HTTP/1.1 \r\n\r\n", .malformedRequestLine),
        ("GET / HTTP/1.1\rX\r\n\r\n", .unsupportedVersion),
        (" / HTTP/1.1\r\n\r\n", .malformedRequestLine),
        ("GET / HTTP/1.1\r\nX: a\r\r\n\r\n", .malformedHeader),
    ])
    func malformedHeadsAreRejectedWith400(text: String, expected: HTTPParseError) {
        for pieces in cuttings(Array(text.utf8)) {
            let (result, _) = parseRequest(pieces)
            guard case .failure(let error)? = result else { Issue.record("\(text.debugDescription) accepted"); return }
            #expect(error == expected)
            #expect(error.status == .badRequest)
        }
    }

    @Test func limitsAnswer431() {
        var limits = HTTPLimits()
        limits.maxLineLength = 64
        limits.maxHeaderCount = 3
        limits.maxHeadBytes = 256
        let longLine = "GET /" + String(repeating: "a", count: 100) + " HTTP/1.1\r\n\r\n"
        let manyHeaders = "GET / HTTP/1.1\r\n" + (0..<4).map { "H\($0): v\r\n" }.joined() + "\r\n"
        let endless = "GET / HTTP/1.1\r\n" + String(repeating: "X: y\r\n", count: 100)
        let tooMany: Result<HTTPRequestHead, HTTPParseError>? = parseRequest([Array(manyHeaders.utf8)], limits: limits).0
        for (text, expected) in [(longLine, HTTPParseError.headTooLarge), (endless, .headTooLarge)] {
            let (result, _) = parseRequest([Array(text.utf8)], limits: limits)
            guard case .failure(let error)? = result else { Issue.record("accepted"); continue }
            #expect(error == expected && error.status == .headerFieldsTooLarge)
        }
        guard case .failure(let error)? = tooMany else { Issue.record("accepted"); return }
        #expect(error == .tooManyHeaders && error.status == .headerFieldsTooLarge)
    }

    @Test func responseHeadsParse() {
        let cases: [(text: String, version: HTTPVersion, status: Int, headers: [String])] = [
            ("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-A:  b c \r\n\r\n", .http11, 200, ["Content-Length: 3", "X-A: b c"]),
            ("HTTP/1.1 204\r\n\r\n", .http11, 204, []),
            ("HTTP/1.0 404 Not Found Here\r\n\r\n", .http10, 404, []),
        ]
        for expected in cases {
            for pieces in cuttings(Array(expected.text.utf8)) {
                var ring = RingBuffer(minimumCapacity: 16, maximumCapacity: 4096)
                var parser = HTTPHeadParser()
                var head: HTTPResponseHead?
                for piece in pieces where head == nil {
                    #expect(appendBytes(&ring, piece))
                    do throws(HTTPParseError) {
                        head = try parser.parseResponse(&ring)
                    } catch {
                        Issue.record("\(expected.text.debugDescription) cut \(pieces.map(\.count)): \(error)")
                    }
                }
                #expect(head?.version == expected.version, "\(expected.text.debugDescription)")
                #expect(head?.status.code == expected.status)
                #expect(head.map { $0.headers.map { "\($0.name): \($0.value)" } } == expected.headers)
                let left = ring.readableBytes
                #expect(left == 0, "bytes left after the head: \(left)")
            }
        }
        for text in ["HTTP/1.1 2000 OK", "HTTP/1.1 099 Low", "HTTP/1.1 +20 X", "HTTP/1.1 2x0", "HTTP/1.1", "HTTP/1.1  200 OK"] {
            var ring = RingBuffer(minimumCapacity: 16, maximumCapacity: 4096)
            #expect(appendBytes(&ring, Array("\(text)\r\n\r\n".utf8)))
            var parser = HTTPHeadParser()
            var rejected: HTTPParseError?
            do throws(HTTPParseError) { _ = try parser.parseResponse(&ring) } catch { rejected = error }
            #expect(rejected == .malformedStatusLine, "\(text)")
        }
    }

    /// Deterministic fuzzing: mutated and random heads at random cut points never crash, and
    /// the ring never holds more than the head limit plus one piece.
    @Test func randomInputNeverCrashesOrGrowsWithoutBound() {
        var random = Xorshift(seed: 0xF00D)
        var limits = HTTPLimits()
        limits.maxHeadBytes = 4096
        let seeds = [Self.get, Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)]
        for round in 0..<20_000 {
            var input = round % 3 == 0 ? (0..<random.below(600)).map { _ in UInt8(truncatingIfNeeded: random.next()) } : seeds[round % 2]
            for _ in 0..<random.below(8) where !input.isEmpty {
                input[random.below(input.count)] = [0, 10, 13, 32, 58, 0xFF, UInt8(truncatingIfNeeded: random.next())][random.below(7)]
            }
            var ring = RingBuffer(minimumCapacity: 16, maximumCapacity: 1 << 20)
            var parser = HTTPHeadParser(limits: limits)
            var offset = 0
            feeding: while offset < input.count {
                let count = 1 + random.below(64)
                let piece = Array(input[offset..<min(input.count, offset + count)])
                offset += piece.count
                _ = appendBytes(&ring, piece)
                #expect(ring.readableBytes <= limits.maxHeadBytes + 64)
                do throws(HTTPParseError) {
                    if round % 2 == 0 { _ = try parser.parseRequest(&ring) } else { _ = try parser.parseResponse(&ring) }
                } catch { break feeding }
            }
        }
    }
}
