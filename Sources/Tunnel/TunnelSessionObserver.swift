/// Hooks for metrics: called on the session's loop. Byte counts are per Data message.
public protocol TunnelSessionObserver: AnyObject {
    func session(_ session: TunnelSession, didAddConnection target: ConnectTarget)
    func session(_ session: TunnelSession, didRemoveConnection target: ConnectTarget)
    func session(_ session: TunnelSession, didSendDataBytes count: Int)
    func session(_ session: TunnelSession, didReceiveDataBytes count: Int)
}
