import Testing
import WebSocket
@testable import Tunnel

/// Inputs the fuzzers found, kept as tests.
@Suite struct FuzzFindingTests {
    /// fuzz-session, 2026-11-26: a header whose connection id overflows the varint ends the
    /// session, but the rest of that message kept feeding the stale decoder, which completed a
    /// Connect (id Int64.min, from a later 0x01 byte) in the ended session's table.
    @Test(arguments: [1, 3, Int.max])
    func theRestOfAMessageWhoseHeaderFailedIsIgnored(pieceSize: Int) throws {
        try onLoop("fuzz-finding") { loop in
            let transport = RecordingTransport(loop: loop)
            let session = TunnelSession(transport: transport, role: .server, clientKey: "c", connectAuthorizer: { _, _ in true })
            transport.start(delegate: session)
            let bytes: [UInt8] = [0x25] + [UInt8](repeating: 0xff, count: 11)
                + [0x04, 0x74, 0x63, 0x54, 0x01, 0x04, 0x70, 0x70, 0x70, 0x70, 0xff, 0xff, 0x70, 0x00, 0x2f]
            transport.deliver(bytes, pieceSize: pieceSize)
            #expect(!session.isOpen, "an overflowing varint must end the session")
            #expect(session.activeConnectionIDs.isEmpty, "the ended session holds \(session.activeConnectionIDs)")
        }
    }
}
