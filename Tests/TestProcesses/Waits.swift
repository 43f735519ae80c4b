/// How long tests wait for an expected frame or state. Generous: only a failing test waits that long, and with the
/// whole suite on two loaded cores a commit and its ack, or an upload's, can take several seconds.
public let frameWait: Duration = .seconds(15)

/// The operation deadline tests give PostgreSQL pools and nodes: the shipped 5 s is for production, where a slow answer
/// means trouble; with test clusters starting beside the whole suite on two cores, connecting alone can take longer.
public let databaseWait: Duration = .seconds(30)
