import ProgramSupport
import Glibc
import HTTP
import Reactor

/// The test file server (the Go demo's "dummy"): serves the working directory over HTTP/1.1
/// with keep-alive, HEAD and single byte ranges, streaming files with back-pressure.
struct DummyCommand: Command {
    var listen = ":8125"

    static var flags: FlagSet<DummyCommand> {
        var flags = FlagSet<DummyCommand>(commandName: "remotedialer-dummy",
            abstract: "Serves the current directory over HTTP (a target for tunnel tests and benchmarks).")
        flags.option("listen", \.listen, help: "Listen address")
        return flags
    }

    func run() throws {
        let address = try SocketAddress(listen)
        let signals = SignalSource.block([SIGINT, SIGTERM])
        let loop = try EventLoop(name: "dummy")
        let http = HTTPServer(loop: loop) { FileResponse.serve($0) }
        try loop.run {
            let bound = try http.listen(on: address)
            print("serving \(String(cString: getcwd(nil, 0))) on \(bound)")
            fflush(nil)  // stdout to a pipe is block-buffered: tests read the bound port from this line
            _ = try loop.watchSignals(signals) { _ in
                http.close()
                loop.stop()
            }
        }
    }
}

/// Bodies from this size on go out with sendfile(2); smaller ones are read and written.
let sendfileThreshold = 64 << 10

/// One file sent in 256 KiB pieces as the connection drains (when sendfile does not apply).
final class FileResponse {
    static let pieceSize = 256 << 10
    let exchange: HTTPServerExchange
    let fd: Int32
    var offset: Int
    var remaining: Int
    var buffer = [UInt8](repeating: 0, count: FileResponse.pieceSize)

    init(exchange: HTTPServerExchange, fd: Int32, offset: Int, count: Int) {
        self.exchange = exchange
        self.fd = fd
        self.offset = offset
        self.remaining = count
    }

    static func serve(_ exchange: HTTPServerExchange) {
        let head = exchange.head
        guard head.method == "GET" || head.method == "HEAD" else {
            return exchange.respond(.methodNotAllowed, body: "method not allowed\n")
        }
        let path = String(head.path).removingPercentEncoding
        let components = path.split(separator: "/")
        // A NUL would end the C string open(2) sees: "/..%00" would open "..".
        guard !components.contains(where: { $0 == ".." }), !path.utf8.contains(0) else {
            return exchange.respond(.badRequest, body: "invalid path\n")
        }
        let relative = components.isEmpty ? "." : components.joined(separator: "/")
        let fd = open(relative, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return exchange.respond(.notFound, body: "404 page not found\n") }
        var info = stat()
        fstat(fd, &info)
        if (info.st_mode & S_IFMT) == S_IFDIR {
            close(fd)
            return exchange.respond(.ok, headers: ["Content-Type": "text/html; charset=utf-8"], body: listing(relative))
        }
        let size = Int(info.st_size)
        var status = HTTPStatus.ok
        var start = 0, count = size
        var headers: HTTPHeaders = ["Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"]
        // Several ranges would need multipart/byteranges; ignoring Range is allowed (RFC 9110
        // §14.2) and serves the whole file.
        if let range = head.headers["Range"], !range.contains(",") {
            guard let (first, last) = parseRange(range, size: size) else {
                close(fd)
                return exchange.respond(.rangeNotSatisfiable, headers: ["Content-Range": "bytes */\(size)"], body: "invalid range\n")
            }
            status = .partialContent
            start = first
            count = last - first + 1
            headers.add(name: "Content-Range", value: "bytes \(first)-\(last)/\(size)")
        }
        headers.add(name: "Content-Length", value: String(count))
        exchange.writeHead(HTTPResponseHead(status: status, headers: headers))
        if head.method == "HEAD" || count == 0 {
            close(fd)
            return exchange.end()
        }
        // Plain TCP and a body worth it: the kernel sends the file (sendfile), no copy of ours.
        if count >= sendfileThreshold, let connection = exchange.streamAfterWritingHead() as? Connection {
            connection.sendFile(fd, offset: start, count: count) { result in
                close(fd)
                if case .success = result { exchange.end() }
            }
            return
        }
        let response = FileResponse(exchange: exchange, fd: fd, offset: start, count: count)
        exchange.onWritable = { response.pump() }
        exchange.onAbort = { _ in response.finish() }
        response.pump()
    }

    func pump() {
        while remaining > 0 && exchange.isWritable {
            let wanted = min(remaining, buffer.count)
            let got = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, wanted, off_t(offset)) }
            guard got > 0 else { return abort() }
            buffer.withUnsafeBytes { _ = exchange.writeBody(UnsafeRawBufferPointer(rebasing: $0[..<got])) }
            offset += got
            remaining -= got
        }
        if remaining == 0 {
            finish()
            exchange.end()
        }
    }

    private func abort() {
        finish()
        exchange.streamAfterWritingHead()?.close()
    }

    func finish() {
        exchange.onWritable = nil
        exchange.onAbort = nil
        if remaining >= 0 { close(fd) }
        remaining = -1
    }

    /// `bytes=first-last`, `bytes=first-`, `bytes=-suffix`; nil when unsatisfiable or malformed.
    static func parseRange(_ text: String, size: Int) -> (Int, Int)? {
        guard text.hasPrefix("bytes=") else { return nil }
        let spec = text.dropFirst(6).split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard spec.count == 2 else { return nil }
        if spec[0].isEmpty {
            guard let suffix = Int(spec[1]), suffix > 0, size > 0 else { return nil }
            return (max(0, size - suffix), size - 1)
        }
        guard let first = Int(spec[0]), first < size else { return nil }
        let last = spec[1].isEmpty ? size - 1 : min(Int(spec[1]) ?? -1, size - 1)
        return last >= first ? (first, last) : nil
    }

    static func listing(_ directory: String) -> String {
        var names: [String] = []
        if let dir = opendir(directory) {
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
                if !name.hasPrefix(".") { names.append(name) }
            }
            closedir(dir)
        }
        // Absolute links (relative ones resolve wrongly for a directory URL without a final "/"),
        // percent-encoded, which leaves nothing to escape for HTML in them.
        let base = directory == "." ? "/" : "/\(directory)/"
        return "<pre>\n" + names.sorted().map { name in
            "<a href=\"\((base + name).percentEncodedForPath)\">\(name.escapedForHTML)</a>"
        }.joined(separator: "\n") + "\n</pre>\n"
    }
}

extension String {
    var escapedForHTML: String {
        var text = ""
        for character in self {
            switch character {
            case "&": text += "&amp;"
            case "<": text += "&lt;"
            case ">": text += "&gt;"
            case "\"": text += "&quot;"
            case "'": text += "&#39;"
            default: text.append(character)
            }
        }
        return text
    }

    /// `%XX` for every byte outside RFC 3986 unreserved characters and "/".
    var percentEncodedForPath: String {
        var text = ""
        for byte in utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "/"):
                text.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                text += "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
            }
        }
        return text
    }

    /// Decodes `%XX` escapes (enough for file names in URLs).
    var removingPercentEncoding: String {
        var bytes: [UInt8] = []
        var iterator = Array(utf8)[...]
        while let byte = iterator.popFirst() {
            if byte == UInt8(ascii: "%"), iterator.count >= 2, let value = UInt8(String(decoding: iterator.prefix(2), as: UTF8.self), radix: 16) {
                bytes.append(value)
                iterator = iterator.dropFirst(2)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

DummyCommand.main()
