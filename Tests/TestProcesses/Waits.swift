/// How long tests wait for an expected frame or state. Generous: only a failing test waits that long, and with the
/// whole suite on two loaded cores a commit and its ack, or an upload's, can take several seconds.
public let frameWait: Duration = .seconds(15)
