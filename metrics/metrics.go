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
}

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
