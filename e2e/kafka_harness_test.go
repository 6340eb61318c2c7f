package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/twmb/franz-go/pkg/kfake"
)

// kafkaCluster is an in-process Kafka-protocol cluster (kfake) on free loopback ports: a real
// implementation of the protocol (topics, partitions, consumer groups, offset commits, SASL,
// TLS), written by others. It is closed when the test ends.
type kafkaCluster struct {
	*kfake.Cluster
	// Brokers is the bootstrap list, "127.0.0.1:p1,127.0.0.1:p2".
	Brokers string
	opts    []kfake.Opt
}

// startKafka starts a kfake cluster of brokers brokers (1 or 3) with the given extra options
// (kfake.SeedTopics, kfake.EnableSASL, kfake.Superuser, kfake.TLS, kfake.DataDir, ...).
func startKafka(t *testing.T, brokers int, opts ...kfake.Opt) *kafkaCluster {
	t.Helper()
	all := append([]kfake.Opt{kfake.NumBrokers(brokers)}, opts...)
	c, err := kfake.NewCluster(all...)
	if err != nil {
		t.Fatalf("starting kfake: %v", err)
	}
	k := &kafkaCluster{Cluster: c, Brokers: strings.Join(c.ListenAddrs(), ","), opts: opts}
	t.Cleanup(c.Close)
	return k
}

// restart closes the cluster and starts it again on the same ports with the same options: with
// kfake.DataDir among them, topics, records and committed offsets survive, as they do across a
// real broker's restart.
func (k *kafkaCluster) restart(t *testing.T, down time.Duration) {
	t.Helper()
	var ports []int
	for _, a := range strings.Split(k.Brokers, ",") {
		_, p, _ := strings.Cut(a, ":")
		n, _ := strconv.Atoi(p)
		ports = append(ports, n)
	}
	k.Close()
	time.Sleep(down)
	all := append([]kfake.Opt{kfake.NumBrokers(len(ports)), kfake.Ports(ports...)}, k.opts...)
	c, err := kfake.NewCluster(all...)
	if err != nil {
		t.Fatalf("restarting kfake: %v", err)
	}
	k.Cluster = c
	t.Cleanup(c.Close)
}

// kafkaMsg is one record as a test produces or reads it.
type kafkaMsg struct {
	Topic     string
	Partition int
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   map[string]string
	Time      time.Time
}

// produce writes records with kafka-go (acks=all, partition by a hash of the key) and returns
// once the broker has them all.
func produce(t *testing.T, k *kafkaCluster, topic string, msgs []kafkaMsg, tlsConf *tls.Config, mech saslMechanism) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(strings.Split(k.Brokers, ",")...), Topic: topic, Balancer: &kafka.Hash{},
		BatchTimeout: 2 * time.Millisecond, BatchSize: 1000, RequiredAcks: kafka.RequireAll, AllowAutoTopicCreation: true,
		Transport: &kafka.Transport{TLS: tlsConf, SASL: mech}}
	defer func() { _ = w.Close() }()
	out := make([]kafka.Message, len(msgs))
	for i, m := range msgs {
		out[i] = kafka.Message{Key: m.Key, Value: m.Value, Time: m.Time}
		for h, v := range m.Headers {
			out[i].Headers = append(out[i].Headers, kafka.Header{Key: h, Value: []byte(v)})
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	for len(out) > 0 {
		n := min(len(out), 5000)
		if err := w.WriteMessages(ctx, out[:n]...); err != nil {
			t.Fatalf("producing to %s: %v", topic, err)
		}
		out = out[n:]
	}
}

// saslMechanism is kafka-go's SASL mechanism (plain.Mechanism, scram.Mechanism); nil for none.
type saslMechanism = sasl.Mechanism

// kcatPath is kcat (Debian's kafkacat package), an independent Kafka client built on librdkafka;
// `make test` installs it.
func kcatPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"kcat", "kafkacat"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("kcat is not installed: run `make test`, which installs Debian's kafkacat")
	return ""
}

// kcatProduce produces records with kcat: one per line of values, with key and headers when
// given (kcat -K and -H).
func kcatProduce(t *testing.T, k *kafkaCluster, topic string, msgs []kafkaMsg) {
	t.Helper()
	for _, m := range msgs {
		args := []string{"-b", k.Brokers, "-P", "-t", topic, "-K", "\x1f", "-c", "1"}
		if m.Partition >= 0 {
			args = append(args, "-p", strconv.Itoa(m.Partition))
		}
		for h, v := range m.Headers {
			args = append(args, "-H", h+"="+v)
		}
		cmd := exec.CommandContext(t.Context(), kcatPath(t), args...)
		var in bytes.Buffer
		in.Write(m.Key)
		in.WriteByte('\x1f')
		in.Write(m.Value)
		cmd.Stdin = &in
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("kcat -P: %v\n%s", err, out)
		}
	}
}

// kcatConsume reads count records of topic from the beginning with kcat (-J: one JSON object
// per record, with key, headers and partition) and fails after timeout.
func kcatConsume(t *testing.T, k *kafkaCluster, topic string, count int, timeout time.Duration) []kafkaMsg {
	t.Helper()
	return kcatRead(t, k, topic, timeout, "-c", strconv.Itoa(count))
}

// kcatAll reads every record of topic that is there now with kcat (-e: stop at the end).
func kcatAll(t *testing.T, k *kafkaCluster, topic string) []kafkaMsg {
	t.Helper()
	return kcatRead(t, k, topic, time.Minute, "-e")
}

// kcatRead runs kcat -C -J on topic from the beginning with the extra arguments that say when
// to stop, and parses its records.
func kcatRead(t *testing.T, k *kafkaCluster, topic string, timeout time.Duration, stop ...string) []kafkaMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	args := append([]string{"-b", k.Brokers, "-C", "-t", topic, "-o", "beginning", "-J", "-u"}, stop...)
	cmd := exec.CommandContext(ctx, kcatPath(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kcat %s: %v (got %d bytes)\n%s", strings.Join(args, " "), err, stdout.Len(), stderr.String())
	}
	var msgs []kafkaMsg
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		if line == "" {
			continue
		}
		var r struct {
			Topic     string   `json:"topic"`
			Partition int      `json:"partition"`
			Offset    int64    `json:"offset"`
			TsMs      int64    `json:"ts"`
			Key       *string  `json:"key"`
			Payload   *string  `json:"payload"`
			Headers   []string `json:"headers"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("kcat -J line %q: %v", line, err)
		}
		m := kafkaMsg{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Time: time.UnixMilli(r.TsMs)}
		if r.Key != nil {
			m.Key = []byte(*r.Key)
		}
		if r.Payload != nil {
			m.Value = []byte(*r.Payload)
		}
		if len(r.Headers) > 0 {
			m.Headers = map[string]string{}
			for i := 0; i+1 < len(r.Headers); i += 2 {
				m.Headers[r.Headers[i]] = r.Headers[i+1]
			}
		}
		msgs = append(msgs, m)
	}
	return msgs
}

// readTopic reads every record of topic with kafka-go until count have arrived or timeout,
// for checks that kcat cannot make (SASL, TLS, large topics).
func readTopic(t *testing.T, k *kafkaCluster, topic string, count int, timeout time.Duration, tlsConf *tls.Config, mech saslMechanism) []kafkaMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	cl := &kafka.Client{Addr: kafka.TCP(strings.Split(k.Brokers, ",")...), Transport: &kafka.Transport{TLS: tlsConf, SASL: mech}}
	md, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil || len(md.Topics) != 1 || md.Topics[0].Error != nil {
		t.Fatalf("metadata of %s: %v %+v", topic, err, md)
	}
	var msgs []kafkaMsg
	for _, p := range md.Topics[0].Partitions {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: strings.Split(k.Brokers, ","), Topic: topic, Partition: p.ID,
			Dialer: &kafka.Dialer{TLS: tlsConf, SASLMechanism: mech, Timeout: 10 * time.Second}, MaxWait: 100 * time.Millisecond})
		lctx, lcancel := context.WithTimeout(ctx, 2*time.Second)
		for {
			m, err := r.ReadMessage(lctx)
			if err != nil {
				break
			}
			km := kafkaMsg{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Value, Time: m.Time}
			for _, h := range m.Headers {
				if km.Headers == nil {
					km.Headers = map[string]string{}
				}
				km.Headers[h.Key] = string(h.Value)
			}
			msgs = append(msgs, km)
		}
		lcancel()
		_ = r.Close()
	}
	if len(msgs) < count {
		t.Fatalf("read %d records of %s, want at least %d", len(msgs), topic, count)
	}
	return msgs
}

// kafkaConnection is the Admin API body of a PLAINTEXT Kafka connection to k.
func kafkaConnection(name string, k *kafkaCluster) map[string]any {
	return map[string]any{"name": name, "type": "Kafka", "bootstrapServers": k.Brokers,
		"security": map[string]any{"protocol": "PLAINTEXT"}}
}

// kafkaSource is a $source stage reading topic from the beginning.
func kafkaSource(conn, topic string, extra string) string {
	return fmt.Sprintf(`{$source: {connectionName: %q, topic: %q, config: {auto_offset_reset: "earliest"}%s}}`, conn, topic, extra)
}
