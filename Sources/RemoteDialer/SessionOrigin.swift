/// Where a session came from and when (wall-clock seconds since 1970), for status reports.
struct SessionOrigin {
    let remoteAddress: String
    let connectedAt: Int
}
