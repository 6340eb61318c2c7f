// Package metrics holds spid's Prometheus registry and the collectors every part of the server
// reports into: per workspace (wire connections, commands by name and outcome, authentication
// failures) and per processor (input, output and dead-letter counts and bytes, end-to-end
// latency, state size, watermark lag, state). The registry is served as Prometheus text
// exposition on /metrics of the Admin API listener, or of --metrics-listen.
//
// Metric names follow Prometheus's conventions (https://prometheus.io/docs/practices/naming/):
// a spi_ prefix, base units (seconds, bytes), _total for counters.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is the registry and its collectors. A nil *Metrics is valid everywhere and records
// nothing, so tests and tools can leave it out.
type Metrics struct {
	Registry *prometheus.Registry

	// WireConnections is the number of open data-plane connections, by workspace.
	WireConnections *prometheus.GaugeVec
	// Commands counts data-plane commands by workspace, command and outcome ("ok" or the
	// codeName of the error).
	Commands *prometheus.CounterVec
	// AuthFailures counts failed data-plane authentications by workspace and mechanism.
	AuthFailures *prometheus.CounterVec

	// Data-plane resource limits (README "Limits").
	//
	// ConnectionsRefused counts connections refused by workspace and reason
	// ("max_connections").
	ConnectionsRefused *prometheus.CounterVec
	// ConnectionsTimedOut counts connections closed by a timeout, by workspace and timeout
	// ("handshake", "unauthenticated_idle", "receive", "write").
	ConnectionsTimedOut *prometheus.CounterVec
	// MessagesOversized counts messages refused for their size, by workspace and whether the
	// connection had authenticated ("false" or "true").
	MessagesOversized *prometheus.CounterVec
	// MessagesOverBudget counts messages refused because the server-wide pending-bytes budget
	// was spent, by workspace.
	MessagesOverBudget *prometheus.CounterVec
	// LoginThrottled counts authentication attempts slowed by the login throttle, by workspace
	// and key ("address" or "user").
	LoginThrottled *prometheus.CounterVec
	// ListenerUp is 1 while a data-plane listener accepts connections and 0 while it backs off
	// after an accept error or after it failed for good, by workspace.
	ListenerUp *prometheus.GaugeVec
	// AcceptErrors counts failed accepts by workspace.
	AcceptErrors *prometheus.CounterVec
	// PendingBytes is the bytes currently held for incoming messages beyond the per-connection
	// allowance (the budget --max-pending-bytes bounds).
	PendingBytes prometheus.Gauge

	// Processor metrics, labelled by workspace and processor name.
	ProcessorInputMessages  *prometheus.CounterVec
	ProcessorInputBytes     *prometheus.CounterVec
	ProcessorOutputMessages *prometheus.CounterVec
	ProcessorOutputBytes    *prometheus.CounterVec
	ProcessorDLQMessages    *prometheus.CounterVec
	ProcessorDLQBytes       *prometheus.CounterVec
	// ProcessorLatency is the time from a document's arrival at the source to the sink's
	// acknowledgement, in seconds.
	ProcessorLatency *prometheus.HistogramVec
	// ProcessorStateBytes is the operator state size (open windows), in bytes.
	ProcessorStateBytes *prometheus.GaugeVec
	// ProcessorWatermarkLag is wall-clock time minus the watermark, in seconds.
	ProcessorWatermarkLag *prometheus.GaugeVec
	// ProcessorState is 1 for the processor's current state label and 0 for the others.
	ProcessorState *prometheus.GaugeVec
	// ProcessorCheckpoints counts committed checkpoints.
	ProcessorCheckpoints *prometheus.CounterVec

	// Kafka source partitions, labelled by workspace, processor, topic and partition (stats
	// kafkaPartitions).
	//
	// KafkaCurrentOffset is the offset after the last record read.
	KafkaCurrentOffset *prometheus.GaugeVec
	// KafkaCheckpointOffset is the offset of the last committed checkpoint.
	KafkaCheckpointOffset *prometheus.GaugeVec
	// KafkaConsumerGroupLag is the partition's high watermark minus the consumer group's
	// committed offset, in records.
	KafkaConsumerGroupLag *prometheus.GaugeVec
	// KafkaPartitionIdle is 1 while the partition is idle (partitionIdleTimeout), else 0.
	KafkaPartitionIdle *prometheus.GaugeVec
	// KafkaWatermarkLag is wall-clock time minus the partition's latest event time, in
	// seconds; absent before the partition's first record.
	KafkaWatermarkLag *prometheus.GaugeVec
}

// KafkaLabels are the labels of the Kafka partition metrics.
var KafkaLabels = []string{"workspace", "processor", "topic", "partition"}

// ProcessorLabels are the labels of every per-processor metric.
var ProcessorLabels = []string{"workspace", "processor"}

// New returns a registry with the Go runtime and process collectors and spid's own.
func New() *Metrics {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{Registry: r}
	pl := ProcessorLabels
	m.WireConnections = gauge(r, "spi_wire_connections", "Open data-plane connections.", "workspace")
	m.Commands = counter(r, "spi_commands_total", "Data-plane commands by name and outcome (ok or the error's codeName).", "workspace", "command", "outcome")
	m.AuthFailures = counter(r, "spi_authentication_failures_total", "Failed data-plane authentications.", "workspace", "mechanism")
	m.ConnectionsRefused = counter(r, "spi_wire_connections_refused_total", "Data-plane connections refused, by reason (max_connections).", "workspace", "reason")
	m.ConnectionsTimedOut = counter(r, "spi_wire_connections_timed_out_total", "Data-plane connections closed by a timeout (handshake, unauthenticated_idle, receive, write).", "workspace", "timeout")
	m.MessagesOversized = counter(r, "spi_wire_messages_oversized_total", "Data-plane messages refused for their size, compressed or uncompressed.", "workspace", "authenticated")
	m.MessagesOverBudget = counter(r, "spi_wire_messages_over_budget_total", "Data-plane messages refused because the server-wide pending-bytes budget was spent.", "workspace")
	m.LoginThrottled = counter(r, "spi_login_throttled_total", "Authentication attempts slowed by the login throttle, by key (address or user).", "workspace", "key")
	m.ListenerUp = gauge(r, "spi_wire_listener_up", "1 while a data-plane listener accepts connections, 0 while it backs off after an accept error or after it failed.", "workspace")
	m.AcceptErrors = counter(r, "spi_wire_accept_errors_total", "Failed accepts on data-plane listeners (out of file descriptors and the like).", "workspace")
	m.PendingBytes = prometheus.NewGauge(prometheus.GaugeOpts{Name: "spi_wire_pending_bytes", Help: "Bytes held for incoming data-plane messages beyond the per-connection allowance."})
	r.MustRegister(m.PendingBytes)
	m.ProcessorInputMessages = counter(r, "spi_processor_input_messages_total", "Documents read by the processor's $source (stats inputMessageCount).", pl...)
	m.ProcessorInputBytes = counter(r, "spi_processor_input_bytes_total", "Bytes read by the processor's $source (stats inputMessageSize).", pl...)
	m.ProcessorOutputMessages = counter(r, "spi_processor_output_messages_total", "Documents written by the processor's sink (stats outputMessageCount).", pl...)
	m.ProcessorOutputBytes = counter(r, "spi_processor_output_bytes_total", "Bytes written by the processor's sink (stats outputMessageSize).", pl...)
	m.ProcessorDLQMessages = counter(r, "spi_processor_dlq_messages_total", "Dead-letter records (stats dlqMessageCount).", pl...)
	m.ProcessorDLQBytes = counter(r, "spi_processor_dlq_bytes_total", "Bytes of dead-letter records (stats dlqMessageSize).", pl...)
	m.ProcessorLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "spi_processor_latency_seconds",
		Help:    "Time from a document's arrival at the source to the sink's acknowledgement of its batch.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 20),
	}, pl)
	r.MustRegister(m.ProcessorLatency)
	m.ProcessorStateBytes = gauge(r, "spi_processor_state_bytes", "Operator state (open windows) in bytes (stats stateSize).", pl...)
	m.ProcessorWatermarkLag = gauge(r, "spi_processor_watermark_lag_seconds", "Wall-clock time minus the processor's watermark.", pl...)
	m.ProcessorState = gauge(r, "spi_processor_state", "1 for the processor's current state (CREATED, STARTED, STOPPED, FAILED), 0 otherwise.", append(pl, "state")...)
	m.ProcessorCheckpoints = counter(r, "spi_processor_checkpoints_total", "Committed checkpoints.", pl...)
	kl := KafkaLabels
	m.KafkaCurrentOffset = gauge(r, "spi_processor_kafka_current_offset", "Offset after the last record the processor read from the partition (stats kafkaPartitions.currentOffset).", kl...)
	m.KafkaCheckpointOffset = gauge(r, "spi_processor_kafka_checkpoint_offset", "Offset of the partition in the processor's last checkpoint (stats kafkaPartitions.checkpointOffset).", kl...)
	m.KafkaConsumerGroupLag = gauge(r, "spi_processor_kafka_consumer_group_lag", "High watermark minus the consumer group's committed offset, in records (stats kafkaPartitions.consumerGroupLag).", kl...)
	m.KafkaWatermarkLag = gauge(r, "spi_processor_kafka_partition_watermark_lag_seconds", "Wall-clock time minus the partition's latest event time (stats kafkaPartitions.watermark).", kl...)
	m.KafkaPartitionIdle = gauge(r, "spi_processor_kafka_partition_idle", "1 while the partition is idle for partitionIdleTimeout (stats kafkaPartitions.isIdle).", kl...)
	return m
}

func counter(r *prometheus.Registry, name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	r.MustRegister(c)
	return c
}

func gauge(r *prometheus.Registry, name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	r.MustRegister(g)
	return g
}

// Handler serves the registry in the Prometheus text exposition format.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

// ForgetProcessor removes a processor's series, after drop or rename.
func (m *Metrics) ForgetProcessor(workspace, name string) {
	if m == nil {
		return
	}
	l := prometheus.Labels{"workspace": workspace, "processor": name}
	for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{
		m.ProcessorInputMessages, m.ProcessorInputBytes, m.ProcessorOutputMessages, m.ProcessorOutputBytes,
		m.ProcessorDLQMessages, m.ProcessorDLQBytes, m.ProcessorLatency, m.ProcessorStateBytes,
		m.ProcessorWatermarkLag, m.ProcessorState, m.ProcessorCheckpoints,
		m.KafkaCurrentOffset, m.KafkaCheckpointOffset, m.KafkaConsumerGroupLag, m.KafkaPartitionIdle, m.KafkaWatermarkLag,
	} {
		v.DeletePartialMatch(l)
	}
}

// Command counts one data-plane command.
func (m *Metrics) Command(workspace, command, outcome string) {
	if m == nil {
		return
	}
	m.Commands.WithLabelValues(workspace, command, outcome).Inc()
}

// AuthFailure counts one failed authentication.
func (m *Metrics) AuthFailure(workspace, mechanism string) {
	if m == nil {
		return
	}
	m.AuthFailures.WithLabelValues(workspace, mechanism).Inc()
}

// ConnectionOpened and ConnectionClosed track open data-plane connections.
func (m *Metrics) ConnectionOpened(workspace string) {
	if m == nil {
		return
	}
	m.WireConnections.WithLabelValues(workspace).Inc()
}

// ConnectionClosed is ConnectionOpened's counterpart.
func (m *Metrics) ConnectionClosed(workspace string) {
	if m == nil {
		return
	}
	m.WireConnections.WithLabelValues(workspace).Dec()
}

func (m *Metrics) inc(pick func(*Metrics) *prometheus.CounterVec, labels ...string) {
	if m == nil {
		return
	}
	pick(m).WithLabelValues(labels...).Inc()
}

// ConnectionRefused counts one refused connection.
func (m *Metrics) ConnectionRefused(workspace, reason string) {
	m.inc(func(m *Metrics) *prometheus.CounterVec { return m.ConnectionsRefused }, workspace, reason)
}

// ConnectionTimedOut counts one connection closed by a timeout.
func (m *Metrics) ConnectionTimedOut(workspace, timeout string) {
	m.inc(func(m *Metrics) *prometheus.CounterVec { return m.ConnectionsTimedOut }, workspace, timeout)
}

// MessageOversized counts one message refused for its size.
func (m *Metrics) MessageOversized(workspace string, authenticated bool) {
	a := "false"
	if authenticated {
		a = "true"
	}
	m.inc(func(m *Metrics) *prometheus.CounterVec { return m.MessagesOversized }, workspace, a)
}

// MessageOverBudget counts one message refused for lack of pending-bytes budget.
func (m *Metrics) MessageOverBudget(workspace string) {
	m.inc(func(m *Metrics) *prometheus.CounterVec { return m.MessagesOverBudget }, workspace)
}

// LoginThrottledEvent counts one authentication attempt slowed by the throttle.
func (m *Metrics) LoginThrottledEvent(workspace, key string) {
	m.inc(func(m *Metrics) *prometheus.CounterVec { return m.LoginThrottled }, workspace, key)
}

// AcceptError counts one failed accept.
func (m *Metrics) AcceptError(workspace string) {
	m.inc(func(m *Metrics) *prometheus.CounterVec { return m.AcceptErrors }, workspace)
}

// SetListenerUp records whether a workspace's listener is accepting.
func (m *Metrics) SetListenerUp(workspace string, up bool) {
	if m == nil {
		return
	}
	v := 0.0
	if up {
		v = 1
	}
	m.ListenerUp.WithLabelValues(workspace).Set(v)
}

// AddPendingBytes moves the pending-bytes gauge by n.
func (m *Metrics) AddPendingBytes(n int64) {
	if m == nil {
		return
	}
	m.PendingBytes.Add(float64(n))
}
