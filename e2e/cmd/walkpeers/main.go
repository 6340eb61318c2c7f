// Command walkpeers runs the two peers of docs/security-walkthrough.md on this machine, for
// trying the tutorial out without a Kafka cluster or a MongoDB deployment of one's own:
//
//   - a Kafka-protocol broker, kfake (github.com/twmb/franz-go/pkg/kfake, in memory), on -kafka
//     (default 127.0.0.1:9092) with SASL SCRAM-SHA-256: the user and password are read from
//     the environment variables KAFKA_USER and KAFKA_PASSWORD (defaults "stocks" and the
//     tutorial's "stocks-Kafka-pw"); the topic "stocks" (one partition) holds the rows of
//     -stocks (default vega-datasets' data/stocks.csv, installed by npm in e2e/), one JSON
//     record {"symbol", "date", "price"} per row, keyed by symbol, in the file's order;
//   - a MongoDB-protocol database, FerretDB 1.24 embedded (SQLite files in -dir, by default a
//     temporary directory removed at exit), on -mongodb (default 127.0.0.1:27018), without
//     authentication (FerretDB 1.24 enforces no users or roles: see the README's "Verified
//     against" for what that leaves unverified).
//
// It prints "stocks <rows written>", both addresses, one per line, as "kafka <host:port>" and
// "mongodb <uri>", then "ready", and runs until SIGINT or SIGTERM. Port 0 picks a free port (the e2e test does).
// Usage (from the repository root): make walkpeers, or
//
//	cd e2e && go run ./cmd/walkpeers [-kafka ADDR] [-mongodb ADDR] [-dir DIR]
package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "walkpeers:", err)
		os.Exit(1)
	}
}

func run() error {
	kafkaAddr := flag.String("kafka", "127.0.0.1:9092", "`host:port` of the Kafka broker (port 0: a free port)")
	mongoAddr := flag.String("mongodb", "127.0.0.1:27018", "`host:port` of FerretDB (port 0: a free port)")
	stocks := flag.String("stocks", "node_modules/vega-datasets/data/stocks.csv", "`CSV` (symbol,date,price) to write to the topic stocks; empty: none")
	dir := flag.String("dir", "", "`directory` of FerretDB's SQLite files (default: a temporary one, removed at exit)")
	flag.Parse()
	user, password := env("KAFKA_USER", "stocks"), env("KAFKA_PASSWORD", "stocks-Kafka-pw")

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	host, port, err := splitPort(*kafkaAddr)
	if err != nil {
		return fmt.Errorf("-kafka: %w", err)
	}
	k, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.ListenFn(listenOn(host)),
		kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", user, password), kfake.SeedTopics(1, "stocks"))
	if err != nil {
		return fmt.Errorf("starting the Kafka broker on %s: %w", *kafkaAddr, err)
	}
	defer k.Close()

	if *stocks != "" {
		n, err := produceStocks(ctx, k.ListenAddrs()[0], user, password, *stocks)
		if err != nil {
			return fmt.Errorf("writing %s to the topic stocks: %w", *stocks, err)
		}
		fmt.Println("stocks", n)
	}

	if *dir == "" {
		tmp, err := os.MkdirTemp("", "walkpeers-")
		if err != nil {
			return err
		}
		defer func() { _ = os.RemoveAll(tmp) }()
		*dir = tmp
	}
	// FerretDB wants a fixed address; port 0 is resolved here first.
	l, err := net.Listen("tcp", *mongoAddr)
	if err != nil {
		return fmt.Errorf("-mongodb: %w", err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: addr},
		Handler:   "sqlite",
		SQLiteURL: "file:" + *dir + "/",
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return fmt.Errorf("FerretDB: %w", err)
	}
	fctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(fctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			fmt.Fprintln(os.Stderr, "walkpeers: FerretDB:", err)
		}
	}()
	for deadline := time.Now().Add(30 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("FerretDB is not listening on %s: %w", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	fmt.Println("kafka", k.ListenAddrs()[0])
	fmt.Println("mongodb", f.MongoDBURI())
	fmt.Println("ready")
	select {
	case <-ctx.Done():
		return nil
	case err := <-done:
		done <- err // for the deferred wait, which reports it
		return errors.New("FerretDB stopped")
	}
}

// produceStocks writes the rows of a stocks CSV to the topic stocks as a client of the broker
// at addr (with SCRAM-SHA-256), and returns how many it wrote. (kcat 1.7 cannot: its
// librdkafka 2.0 wants a SaslHandshake v0, and kfake speaks v1 only.)
func produceStocks(ctx context.Context, addr, user, password, path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer func() { _ = f.Close() }()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return 0, err
	}
	if len(rows) == 0 || !slices.Equal(rows[0], []string{"symbol", "date", "price"}) {
		return 0, errors.New("the header is not symbol,date,price")
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.SASL(scram.Auth{User: user, Pass: password}.AsSha256Mechanism()),
		kgo.DefaultProduceTopic("stocks"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	var recs []*kgo.Record
	for i, r := range rows[1:] {
		if _, err := strconv.ParseFloat(r[2], 64); err != nil {
			return 0, fmt.Errorf("line %d: price %q is not a number", i+2, r[2])
		}
		v, _ := json.Marshal(map[string]any{"symbol": r[0], "date": r[1], "price": json.Number(r[2])})
		recs = append(recs, &kgo.Record{Key: []byte(r[0]), Value: v})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return 0, err
	}
	return len(recs), nil
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func splitPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("port %q is not a number from 0 to 65535", p)
	}
	return host, port, nil
}

// listenOn makes kfake listen on host (its default is 127.0.0.1) with the port it asks for.
func listenOn(host string) func(network, addr string) (net.Listener, error) {
	return func(network, addr string) (net.Listener, error) {
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		return net.Listen(network, net.JoinHostPort(host, port))
	}
}
