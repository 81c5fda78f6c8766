import Foundation
import Testing
@testable import Tunnel

/// The bytes made by the Go implementation (../shared/vectors/messages.json), reproduced and
/// judged exactly as Go does.
struct GoldenVectorTests {
    /// A copy of ../shared/vectors/messages.json lives in Tests/Fixtures so a fresh clone has it.
    nonisolated(unsafe) static let vectors: [String: Any] = {  // read-only after first use
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        let path = fixtures.appendingPathComponent("Fixtures/messages.json").path()
        guard let data = FileManager.default.contents(atPath: path),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            fatalError("cannot read \(path)")
        }
        return object
    }()

    static func hex(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2)
            bytes.append(UInt8(text[index..<next], radix: 16)!)
            index = next
        }
        return bytes
    }

    static func bytes(_ field: Any?) -> [UInt8]? {
        guard let object = field as? [String: Any], let text = object["hex"] as? String else { return nil }
        return hex(text)
    }

    /// Rebuilds the message a vector describes from our builders.
    static func build(_ entry: [String: Any]) -> TunnelMessage {
        let id = (entry["id"] as! NSNumber).int64Value
        let connID = (entry["conn_id"] as! NSNumber).int64Value
        let name = entry["case"] as! String
        switch name {
        case "data_empty": return .data(id: id, connID: connID, [])
        case "data_hello": return .data(id: id, connID: connID, Array("hello".utf8))
        case "data_bytes_0_to_255": return .data(id: id, connID: connID, (0...255).map { UInt8($0) })
        case "data_70000": return .data(id: id, connID: connID, (0..<70000).map { UInt8($0 % 251) })
        case "connect_tcp": return .connect(id: id, connID: connID, try! ConnectTarget(payload: bytes(entry["payload"])!))
        case "connect_peer_forward": return .connect(id: id, connID: connID, try! ConnectTarget(payload: bytes(entry["payload"])!))
        case "error_EOF": return .error(id: id, connID: connID, "EOF")
        case "error_connection_refused": return .error(id: id, connID: connID, String(decoding: bytes(entry["payload"])!, as: UTF8.self))
        case "addclient": return .addClient(id: id, connID: connID, try! RemoteClient(payload: bytes(entry["payload"])!))
        case "removeclient": return .removeClient(id: id, connID: connID, try! RemoteClient(payload: bytes(entry["payload"])!))
        case "pause": return .pause(id: id, connID: connID)
        case "resume": return .resume(id: id, connID: connID)
        case "syncconnections_1_2_300": return .syncConnections(id: id, connID: connID, [1, 2, 300])
        case "syncconnections_empty": return .syncConnections(id: id, connID: connID, [])
        case "syncconnections_neg_max": return .syncConnections(id: id, connID: connID, try! SyncConnections.decode(bytes(entry["payload"])!))
        default: fatalError("unknown case \(name)")
        }
    }

    @Test func everyEncodeVectorIsReproducedByteForByte() throws {
        let entries = Self.vectors["encode"] as! [[String: Any]]
        #expect(entries.count == 540)
        for entry in entries {
            let message = Self.build(entry)
            let encoded = message.encoded
            let header = message.header.withEncodedBytes { Array($0) }
            let label = "\(entry["case"]!) id=\(entry["id"]!) conn=\(entry["conn_id"]!)"
            #expect(header == Self.hex(entry["header_hex"] as! String), "\(label)")
            #expect(encoded.count == (entry["len"] as! Int), "\(label)")
            if let whole = entry["hex"] as? String {
                #expect(encoded == Self.hex(whole), "\(label)")
            } else {
                let payload = entry["payload"] as! [String: Any]
                #expect(message.payload.count == payload["len"] as! Int)
                #expect(sha256Hex(message.payload) == payload["sha256"] as! String, "\(label)")
            }
            #expect(message.header.type.rawValue == (entry["type"] as! NSNumber).int64Value)
        }
    }

    @Test func everyDecodeCaseIsJudgedAsGoJudgesIt() throws {
        let cases = Self.vectors["decode"] as! [[String: Any]]
        #expect(cases.count == 32)
        for entry in cases {
            let name = entry["case"] as! String
            let input = Self.bytes(entry["input"])!
            let expected = entry["new_server_message"] as! [String: Any]
            let result: Result<TunnelMessage, TunnelDecodingError> = Result { () throws(TunnelDecodingError) in try TunnelMessage.decode(input) }
            switch result {
            case .failure(let error):
                #expect(expected["ok"] as? Bool == false, "\(name): rejected with \(error)")
                #expect(error.description == expected["error"] as? String, "\(name)")
            case .success(let message):
                #expect(expected["ok"] as? Bool == true, "\(name): accepted")
                guard expected["ok"] as? Bool == true else { continue }
                #expect(message.header.id == (expected["id"] as! NSNumber).int64Value, "\(name)")
                #expect(message.header.connID == (expected["conn_id"] as! NSNumber).int64Value, "\(name)")
                #expect(message.header.type.rawValue == (expected["type"] as! NSNumber).int64Value, "\(name)")
                // What Go reads into the message vs what it leaves in the body reader.
                switch message.header.type {
                case .connect:
                    #expect(message.payload == Self.bytes(expected["payload"]), "\(name)")
                    let target = try ConnectTarget(payload: message.payload)
                    #expect(target.proto == expected["proto"] as? String, "\(name)")
                    #expect(target.address == expected["address"] as? String, "\(name)")
                    #expect(message.unread == Self.bytes(expected["body_rest"]), "\(name)")
                case .error:
                    #expect(String(decoding: message.payload, as: UTF8.self) == expected["err"] as? String, "\(name)")
                    #expect(message.unread == Self.bytes(expected["body_rest"]), "\(name)")
                case .addClient, .removeClient:
                    #expect(String(decoding: message.payload, as: UTF8.self) == expected["address"] as? String, "\(name)")
                    #expect(message.unread == Self.bytes(expected["body_rest"]), "\(name)")
                case .syncConnections:
                    #expect(message.payload == Self.bytes(expected["payload"]), "\(name)")
                    if let error = expected["decode_connection_ids_error"] as? String {
                        #expect(throws: TunnelDecodingError.syncConnectionsFormat) { try SyncConnections.decode(message.payload) }
                        #expect("decoding sync connections payload: \(error)" == TunnelDecodingError.syncConnectionsFormat.description)
                    } else {
                        let ids = (expected["connection_ids"] as! [NSNumber]).map(\.int64Value)
                        #expect(try SyncConnections.decode(message.payload) == ids, "\(name)")
                    }
                case .pause, .resume:
                    #expect(message.payload.isEmpty)
                    #expect(message.unread == Self.bytes(expected["body_rest"]), "\(name)")
                default:  // Data and unknown types: the whole body is left for the session
                    #expect(message.payload == Self.bytes(expected["body_rest"]), "\(name)")
                }
            }
        }
    }

    @Test func addClientPayloadErrorsMatchGoTexts() {
        let cases = Self.vectors["decode"] as! [[String: Any]]
        for entry in cases where (entry["case"] as! String).contains("client_") {
            let serve = entry["serve_message"] as! [String: Any]
            let message = try! TunnelMessage.decode(Self.bytes(entry["input"])!)
            #expect(throws: (any Error).self) { try RemoteClient(payload: message.payload) }
            do { _ = try RemoteClient(payload: message.payload) } catch {
                #expect(error.description == serve["error"] as? String)
            }
        }
    }

    /// The header decoder gives the same answer however the message is cut into pieces.
    @Test func headerDecodesAcrossEveryCutPoint() throws {
        let message = TunnelMessage.connect(id: -9_223_372_036_854_775_808, connID: 300, ConnectTarget(proto: "tcp", address: "127.0.0.1:80"))
        let bytes = message.encoded
        let headerLength = message.header.withEncodedBytes { $0.count }
        for cut in 0...bytes.count {
            var decoder = MessageHeaderDecoder()
            var found: (MessageHeader, Int)?
            var offset = 0
            for piece in [Array(bytes[..<cut]), Array(bytes[cut...])] where found == nil {
                if let (header, used) = try piece.withUnsafeBytes({ (raw) throws(TunnelDecodingError) in try decoder.feed(raw) }) {
                    found = (header, offset + used)
                }
                offset += piece.count
            }
            #expect(found?.0 == message.header)
            #expect(found?.1 == headerLength)
        }
    }
}

/// sha256 through the system tool: the vectors give large payloads only as a digest.
func sha256Hex(_ bytes: [UInt8]) -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
    let input = Pipe(), output = Pipe()
    process.standardInput = input
    process.standardOutput = output
    try! process.run()
    input.fileHandleForWriting.write(Data(bytes))
    try! input.fileHandleForWriting.close()
    let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    return String(text.prefix(64))
}
