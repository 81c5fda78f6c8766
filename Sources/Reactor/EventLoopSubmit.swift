/// Async work on a loop from any task.
///
/// The result crosses threads through a lock as well as the continuation: when the loop resumes
/// the continuation before the awaiting task has finished suspending, the task goes on without
/// passing through the executor, an edge ThreadSanitizer does not see (it reported the fields of
/// a stream built on the loop as racing with their first read in the task). The lock makes the
/// ordering explicit for any checker and costs one uncontended lock per call, never on the data path.
extension EventLoop {
    /// Runs `body` on the loop and returns its result to the awaiting task.
    public func submit<T: Sendable>(_ body: @escaping () throws -> T) async throws -> T {
        let task = UncheckedSendable(body)
        return try await submit(completing: { complete in complete(Result { try task.value() }) })
    }

    /// Runs `body` on the loop; the task resumes with what `body` passes to `complete`, once,
    /// from the loop (for completion-style loop APIs such as `connect`).
    public func submit<T: Sendable>(
        completing body: @escaping (_ complete: @escaping (Result<T, any Error>) -> Void) -> Void
    ) async throws -> T {
        let slot = HandOffSlot<T>()
        let task = UncheckedSendable(body)
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            execute {
                task.value { result in
                    slot.put(result)
                    continuation.resume()
                }
            }
        }
        return try slot.take().get()
    }
}

/// One result handed from a loop to a task.
private final class HandOffSlot<T: Sendable>: @unchecked Sendable {  // `result` is only touched under `lock`
    private let lock = Lock()
    private var result: Result<T, any Error>?

    func put(_ value: Result<T, any Error>) { lock.withLock { result = value } }

    func take() -> Result<T, any Error> {
        guard let value = lock.withLock({ result }) else { preconditionFailure("a loop resumed a submit without a result") }
        return value
    }
}
