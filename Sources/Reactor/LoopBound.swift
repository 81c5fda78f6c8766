/// Carries a loop-confined value through a `@Sendable` closure that will run on that same loop
/// (e.g. `execute` from the loop to itself, or a resolver callback). Access off the loop traps.
public struct LoopBound<Value>: @unchecked Sendable {  // the value is only reachable on `loop`'s thread, checked on every access
    private let storage: Value
    public let loop: EventLoop

    public init(_ value: Value, loop: EventLoop) {
        loop.assertInLoop()
        self.storage = value
        self.loop = loop
    }

    init(uncheckedValue value: Value, loop: EventLoop) {
        self.storage = value
        self.loop = loop
    }

    public var value: Value {
        precondition(loop.inEventLoop, "LoopBound value accessed off its loop")
        return storage
    }
}
