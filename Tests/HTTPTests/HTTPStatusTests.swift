import Testing
import HTTP

struct HTTPStatusTests {
    @Test func reasonPhrases() {
        #expect(HTTPStatus.headerFieldsTooLarge.description == "431 Request Header Fields Too Large")
        #expect(HTTPStatus(599).reasonPhrase == "Status 599")
    }
}
