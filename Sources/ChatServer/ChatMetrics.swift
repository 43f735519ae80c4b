import ChatProtocol
import Metrics
import Prometheus

/// The server's metrics, exported by `GET /metrics` in Prometheus text format. Each server owns its registry
/// (no global bootstrap), so several servers in one process (tests) keep separate figures.
final class ChatMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    private let connectedCustomers: Metrics.Gauge
    private let connectedAgents: Metrics.Gauge
    let messagesStored: Metrics.Counter
    let messagesDelivered: Metrics.Counter
    let failedAuthentications: Metrics.Counter
    let rejectedFrames: Metrics.Counter
    let slowConsumerDisconnects: Metrics.Counter
    /// From the moment a `send` frame is read to the moment the stored message is queued to its recipients.
    let deliveryLatency: Metrics.Timer
    let commitBatchSize: Metrics.Recorder
    /// How long the store took to commit one batch (SQLite's fsync, or PostgreSQL's round trips and commit).
    let commitDuration: Metrics.Timer

    init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
            .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
            .milliseconds(500), .seconds(1), .seconds(2.5),
        ]
        factory.defaultValueHistogramBuckets = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500]
        connectedCustomers = Metrics.Gauge(label: "chat_connections", dimensions: [("role", "customer")], factory: factory)
        connectedAgents = Metrics.Gauge(label: "chat_connections", dimensions: [("role", "agent")], factory: factory)
        messagesStored = Metrics.Counter(label: "chat_messages_stored_total", factory: factory)
        messagesDelivered = Metrics.Counter(label: "chat_messages_delivered_total", factory: factory)
        failedAuthentications = Metrics.Counter(label: "chat_auth_failures_total", factory: factory)
        rejectedFrames = Metrics.Counter(label: "chat_rejected_frames_total", factory: factory)
        slowConsumerDisconnects = Metrics.Counter(label: "chat_slow_consumer_disconnects_total", factory: factory)
        deliveryLatency = Metrics.Timer(label: "chat_delivery_latency_seconds", factory: factory)
        commitBatchSize = Metrics.Recorder(label: "chat_commit_batch_size", factory: factory)
        commitDuration = Metrics.Timer(label: "chat_commit_seconds", factory: factory)
    }

    func setConnections(customers: Int, agents: Int) {
        connectedCustomers.record(customers)
        connectedAgents.record(agents)
    }

    func exposition() -> String {
        registry.emitToString()
    }
}
