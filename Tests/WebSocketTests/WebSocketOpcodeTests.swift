import Testing
import WebSocket

struct WebSocketOpcodeTests {
    @Test func reservedOpcodesAreNotRepresentable() {
        for raw in [3, 4, 5, 6, 7, 11, 12, 13, 14, 15] as [UInt8] { #expect(WebSocketOpcode(rawValue: raw) == nil) }
        #expect(WebSocketOpcode.ping.isControl && !WebSocketOpcode.binary.isControl)
    }
}
