import Reactor
import Tunnel
import FuzzSupport

// libFuzzer entry point for the tunnel protocol's state machine: one `TunnelSession` (either
// role) over a recording transport, fed random message sequences, with its local side (dials,
// writes, closes, target sockets) driven by the same input. Build and run with Scripts/fuzz.sh.
//
// Input: a config byte (bit 0: client role; bit 1: Connects are authorized; bit 2: SyncConnections
// grace zero), a piece-size byte (how incoming messages are cut; 0: whole), then operations: an
// op byte (high nibble: what; low nibble: a parameter, mostly a connection id selector: 0–11 is
// that id, 12–15 reads an 8-byte id) and its operands, read as zeros once the input runs out.
//   0 Connect   1 Data   2 Pause   3 Resume   4 Error   5 SyncConnections   6 Add/RemoveClient
//   7 raw message bytes   8 local dial   9 local write   10 local close   11 finish a pending dial
//   12 WebSocket writability   13 a target socket's event   14 a local reader's mode   15 other types
//
// Invariants (a violation traps, which libFuzzer reports):
//   - the connection table holds only ids the session dialled or was sent a Connect for, never
//     more than the limit, none after the session ended, none a complete Error just ended, none
//     a local close just ended, none missing from a SyncConnections list (grace zero), and no
//     accepted connection when Connects are refused;
//   - no Data goes out for a connection between the remote's Pause and Resume;
//   - buffered bytes stay under (limit × two rings × the per-connection cap);
//   - once the input ends and the session is closed, nothing holds the session (no cycle).

private let group = try! ReactorGroup(loopCount: 1, name: "fuzz-session")
private let loop = group.next()

private func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("invariant broken: \(message())") }
}

/// The operands of one input, read front to back; zeros once it runs out.
private struct Operands {
    let bytes: UnsafeRawBufferPointer
    var offset = 0

    var isEmpty: Bool { offset >= bytes.count }

    mutating func byte() -> UInt8 {
        guard offset < bytes.count else { return 0 }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func take(_ count: Int) -> [UInt8] {
        let end = min(bytes.count, offset + count)
        defer { offset = end }
        return Array(bytes[offset..<end])
    }

    /// 0–11 as themselves; 12–15 an id from the next 8 bytes (any value, negative included).
    mutating func connID(_ selector: UInt8) -> Int64 {
        guard selector >= 12 else { return Int64(selector) }
        return take(8).reduce(Int64(0)) { $0 << 8 | Int64($1) }
    }
}

/// The session's message channel: checks that no Data leaves for a connection the remote has
/// paused.
private final class CheckingTransport: TunnelTransport {
    let loop: EventLoop
    var isWritable = true
    let lastReceivedAt = MonotonicClock.now()
    weak var delegate: (any TunnelTransportDelegate)?
    /// Connections the remote paused (and has not resumed) while they were in the table.
    var remotePaused = Set<Int64>()

    init(loop: EventLoop) { self.loop = loop }

    func start(delegate: any TunnelTransportDelegate) { self.delegate = delegate }
    func sendPing() -> Bool { true }
    func close(error: (any Error)?) {}

    func sendMessage(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer) -> Bool {
        var decoder = MessageHeaderDecoder()
        if let (header, _) = try? decoder.feed(first), header.type == .data {
            check(!remotePaused.contains(header.connID), "Data sent for connection \(header.connID) during the remote's Pause")
        }
        return true
    }

    /// Delivers one binary message in pieces of `pieceSize` bytes (0: whole).
    func deliver(_ bytes: [UInt8], pieceSize: Int, isBinary: Bool = true) {
        guard let delegate else { return }
        delegate.transportDidBeginMessage(isBinary: isBinary)
        let step = pieceSize == 0 ? max(1, bytes.count) : pieceSize
        var offset = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + step)
            bytes[offset..<end].withUnsafeBytes { delegate.transportDidReceivePiece($0) }
            offset = end
        }
        delegate.transportDidEndMessage()
    }
}

/// The reader of a connection this side dialled: consumes or holds what arrives, per the input.
private final class LocalReader: StreamHandler {
    var consumes = true
    func streamDidRead(_ stream: any ByteStream, _ buffer: inout RingBuffer) {
        if consumes { buffer.consume(buffer.readableBytes) } else { stream.pauseReading() }
    }
    func streamDidReadEOF(_ stream: any ByteStream) { stream.close() }
    func streamDidClose(_ stream: any ByteStream, error: (any Error)?) {}
}

/// One input's session, its local side and what the checks need to know.
private final class Run {
    let transport = CheckingTransport(loop: loop)
    let session: TunnelSession
    let options: TunnelOptions
    let pieceSize: Int
    let authorizes: Bool
    var knownIDs = Set<Int64>()
    var dialled: [(TunnelConnection, LocalReader)] = []
    var targets: [MemoryStream] = []
    var pendingDials: [(Result<any ByteStream, any Error>) -> Void] = []
    var nextMessageID: Int64 = 1

    init(config: UInt8, pieceSize: UInt8) {
        var options = TunnelOptions()
        options.maxConnections = 16
        options.maxBufferedInbound = 64 << 10
        options.pauseThreshold = 16 << 10
        options.resumeThreshold = 4 << 10
        options.maxDataPayload = 4 << 10
        options.maxAnnouncedClients = 32
        options.maxUnknownIDsRemembered = 8
        if config & 4 != 0 { options.syncGrace = .zero }
        self.options = options
        self.pieceSize = Int(pieceSize)
        authorizes = config & 2 != 0
        session = TunnelSession(transport: transport, role: config & 1 == 0 ? .server : .client, clientKey: "fuzz",
                                sessionKey: 1, options: options, connectAuthorizer: config & 2 != 0 ? { _, _ in true } : nil)
        session.dialer = { [weak self] _, _, completion in self?.pendingDials.append(completion) }
        session.start()
    }

    func deliver(_ message: TunnelMessage) {
        var message = message
        message.header.id = nextMessageID
        nextMessageID += 1
        deliver(message.encoded)
    }

    /// Any message, well-formed or not: a Connect makes its id known and replaces any connection
    /// with that id (so it is no longer paused); a Resume may send at once.
    func deliver(_ bytes: [UInt8]) {
        var decoder = MessageHeaderDecoder()
        if let (header, _) = bytes.withUnsafeBytes({ try? decoder.feed($0) }), header.type == .connect || header.type == .resume {
            if header.type == .connect { knownIDs.insert(header.connID) }
            transport.remotePaused.remove(header.connID)
        }
        transport.deliver(bytes, pieceSize: pieceSize)
    }

    var active: Set<Int64> { Set(session.activeConnectionIDs) }

    func play(_ op: UInt8, _ operands: inout Operands) {
        let parameter = op & 0x0F
        switch op >> 4 {
        case 0:
            let id = operands.connID(parameter)
            let payload = operands.take(Int(operands.byte()))
            deliver(TunnelMessage(header: MessageHeader(id: 0, connID: id, type: .connect), payload: payload))
            if !authorizes { check(active.isSubset(of: dialled.map(\.0.id)), "a Connect was accepted while Connects are refused") }
        case 1:
            let count = Int(operands.byte()) << 6 | Int(operands.byte() & 0x3F)
            deliver(.data(id: 0, connID: operands.connID(parameter), [UInt8](repeating: op, count: count)))
        case 2:
            let id = operands.connID(parameter)
            let wasActive = active.contains(id)
            deliver(.pause(id: 0, connID: id))
            if wasActive && active.contains(id) { transport.remotePaused.insert(id) }
        case 3:
            deliver(.resume(id: 0, connID: operands.connID(parameter)))
        case 4:
            let id = operands.connID(parameter)
            let text = operands.take(Int(operands.byte() % 120))
            deliver(TunnelMessage(header: MessageHeader(id: 0, connID: id, type: .error), payload: text))
            check(!active.contains(id), "connection \(id) is still in the table after the remote's Error")
        case 5:
            let ids = (0..<Int(parameter)).map { _ in operands.connID(operands.byte() & 0x0F) }
            deliver(.syncConnections(id: 0, ids))
            if options.syncGrace == .zero && session.isOpen {
                check(active.isSubset(of: ids), "connections \(active.subtracting(ids)) outlived a SyncConnections without them")
            }
        case 6:
            let payload = operands.take(Int(operands.byte() % 110))
            deliver(TunnelMessage(header: MessageHeader(id: 0, connID: 0, type: parameter & 1 == 0 ? .addClient : .removeClient), payload: payload))
            check(session.remoteClients.count <= options.maxAnnouncedClients, "more announced clients than the limit")
        case 7:
            deliver(operands.take(Int(operands.byte())))
        case 8:
            guard let connection = try? session.dial(proto: "tcp", address: "127.0.0.1:\(parameter)") else { return }
            knownIDs.insert(connection.id)
            let reader = LocalReader()
            connection.start(handler: reader)
            dialled.append((connection, reader))
        case 9:
            guard !dialled.isEmpty else { return }
            let connection = dialled[Int(parameter) % dialled.count].0
            [UInt8](repeating: parameter, count: Int(operands.byte()) << 8).withUnsafeBytes { _ = connection.write($0) }
        case 10:
            guard !dialled.isEmpty else { return }
            let connection = dialled[Int(parameter) % dialled.count].0
            switch parameter % 3 {
            case 0: connection.close()
            case 1: connection.closeAfterFlush()
            default: connection.close(error: DialError("fuzz"))
            }
            if parameter % 3 != 1 { check(!connection.isOpen, "connection \(connection.id) still open after close") }
        case 11:
            guard !pendingDials.isEmpty else { return }
            let completion = pendingDials.remove(at: Int(parameter) % pendingDials.count)
            if parameter & 1 == 0 {
                let target = MemoryStream(loop: loop)
                targets.append(target)
                completion(.success(target))
            } else {
                completion(.failure(DialError("dial tcp: connect: connection refused")))
            }
        case 12:
            transport.isWritable = parameter & 1 == 0
            session.transportWritabilityDidChange(isWritable: transport.isWritable)
        case 13:
            guard !targets.isEmpty else { return }
            let target = targets[Int(operands.byte()) % targets.count]
            switch parameter {
            case 0..<8: target.feed([UInt8](repeating: parameter, count: Int(operands.byte()) << 6))
            case 8..<12: target.setWritable(parameter & 1 == 0)
            case 12: target.end()
            default: target.close(error: DialError("read: connection reset by peer"))
            }
        case 14:
            guard !dialled.isEmpty else { return }
            let (connection, reader) = dialled[Int(parameter) % dialled.count]
            reader.consumes = parameter & 1 == 0
            if reader.consumes { connection.resumeReading() }
        default:
            if parameter == 15 {
                transport.deliver([1], pieceSize: 0, isBinary: false)
            } else {
                let payload = operands.take(Int(operands.byte()))
                deliver(TunnelMessage(header: MessageHeader(id: 0, connID: operands.connID(parameter), type: MessageType(rawValue: Int64(parameter) + 10)), payload: payload))
            }
        }
    }

    /// What must hold after every operation.
    func checkTable() {
        let active = self.active
        check(active.count <= options.maxConnections, "\(active.count) connections, limit \(options.maxConnections)")
        check(active.isSubset(of: knownIDs), "ids \(active.subtracting(knownIDs)) in the table were never dialled nor sent a Connect")
        if !session.isOpen { check(active.isEmpty, "connections \(active) outlived the session") }
        transport.remotePaused.formIntersection(active)
        // Two rings per connection, each at most the cap rounded up to a power of two.
        check(session.bufferedBytes <= options.maxConnections * 2 * 2 * options.maxBufferedInbound, "\(session.bufferedBytes) bytes buffered")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSession(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var operands = Operands(bytes: UnsafeRawBufferPointer(start: data, count: size))
    weak var finished: TunnelSession?
    loop.runBlocking {
        let run = Run(config: operands.byte(), pieceSize: operands.byte())
        while !operands.isEmpty {
            run.play(operands.byte(), &operands)
            run.checkTable()
        }
        run.session.close()
        run.checkTable()
        finished = run.session
    }
    // Deferred closes and their callbacks run after the batch above.
    loop.runBlocking {}
    loop.runBlocking {}
    check(finished == nil, "the session is still referenced after it closed and its input ended")
    return 0
}
