// Command spibench measures spid against a reference MongoDB-protocol server in the same run
// and prints the ratio. Both servers run as child processes on loopback; the Go driver drives
// them from this process with the same settings.
//
// The reference is FerretDB (embedded, SQLite backend), started by re-running this program with
// -serve-ferretdb so that neither server shares a process with the load generator.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

func main() {
	spid := flag.String("spid", "../bin/spid", "path of the spid binary")
	duration := flag.Duration("duration", 3*time.Second, "measuring time of each round")
	rounds := flag.Int("rounds", 3, "rounds per server and concurrency; the median is reported")
	clients := flag.String("clients", "1,16", "comma-separated numbers of concurrent clients")
	serveFerret := flag.Bool("serve-ferretdb", false, "internal: run the reference server and print its URI")
	flag.Parse()

	if *serveFerret {
		if err := serveFerretDB(); err != nil {
			fmt.Fprintln(os.Stderr, "ferretdb:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*spid, *duration, *rounds, *clients); err != nil {
		fmt.Fprintln(os.Stderr, "spibench:", err)
		os.Exit(1)
	}
}

var uriLine = regexp.MustCompile(`(mongodb://[^"\s]+)`)

// child is a server running as a subprocess.
type child struct {
	name string
	cmd  *exec.Cmd
	uri  string
}

func startChild(name string, path string, args ...string) (*child, error) {
	cmd := exec.Command(path, args...)
	cmd.Stderr = io.Discard
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	uri := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := uriLine.FindString(sc.Text()); m != "" {
				uri <- m
				break
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case u := <-uri:
		return &child{name: name, cmd: cmd, uri: u}, nil
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("%s did not start", name)
	}
}

func (c *child) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
}

type result struct {
	opsPerSec float64
	p50, p99  time.Duration
}

func run(spidPath string, duration time.Duration, rounds int, clientList string) error {
	var counts []int
	for _, s := range strings.Split(clientList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("bad -clients value %q", s)
		}
		counts = append(counts, n)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	dataDir, err := os.MkdirTemp("", "spibench-spid-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dataDir) }()
	spid, err := startChild("spid", spidPath, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
		"--data-dir", dataDir, "--log-level", "warn")
	if err != nil {
		return err
	}
	defer spid.stop()
	ref, err := startChild("FerretDB", self, "-serve-ferretdb")
	if err != nil {
		return err
	}
	defer ref.stop()

	fmt.Printf("ping round trips per second, Go driver v2, %d round(s) of %s each, median reported\n", rounds, duration)
	fmt.Printf("reference: FerretDB v1.24.2 embedded (SQLite), its own process; client and servers share %d CPUs\n\n", nproc())
	fmt.Printf("%-8s  %-9s  %12s  %9s  %9s\n", "clients", "server", "pings/s", "p50", "p99")
	for _, n := range counts {
		res := map[string][]result{}
		for r := 0; r < rounds; r++ {
			// Alternate servers within each round so drift in machine load hits both alike.
			for _, c := range []*child{spid, ref} {
				got, err := measure(c.uri, n, duration)
				if err != nil {
					return fmt.Errorf("%s with %d clients: %w", c.name, n, err)
				}
				res[c.name] = append(res[c.name], got)
			}
		}
		s, f := median(res["spid"]), median(res["FerretDB"])
		for _, row := range []struct {
			name string
			r    result
		}{{"spid", s}, {"FerretDB", f}} {
			fmt.Printf("%-8d  %-9s  %12.0f  %9s  %9s\n", n, row.name, row.r.opsPerSec, row.r.p50.Round(time.Microsecond), row.r.p99.Round(time.Microsecond))
		}
		fmt.Printf("%-8d  %-9s  %11.2fx  (goal: >= 1.00x)\n\n", n, "ratio", s.opsPerSec/f.opsPerSec)
	}
	return nil
}

func median(rs []result) result {
	slices.SortFunc(rs, func(a, b result) int {
		switch {
		case a.opsPerSec < b.opsPerSec:
			return -1
		case a.opsPerSec > b.opsPerSec:
			return 1
		}
		return 0
	})
	return rs[len(rs)/2]
}

// measure runs n goroutines sending ping as fast as replies come back, each on its own pooled
// connection, for d after a short warm-up.
func measure(uri string, n int, d time.Duration) (result, error) {
	opts := options.Client().ApplyURI(uri).SetMaxPoolSize(uint64(n)).SetMinPoolSize(uint64(n)).SetDirect(true)
	c, err := mongo.Connect(opts)
	if err != nil {
		return result{}, err
	}
	defer func() { _ = c.Disconnect(context.Background()) }()
	db := c.Database("admin")
	ping := bson.D{{Key: "ping", Value: 1}}
	ctx := context.Background()
	if err := db.RunCommand(ctx, ping).Err(); err != nil {
		return result{}, err
	}

	var (
		measuring atomic.Bool
		stop      atomic.Bool
		ops       atomic.Int64
		firstErr  error
		errOnce   sync.Once
		wg        sync.WaitGroup
		lats      = make([][]time.Duration, n)
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				t0 := time.Now()
				if err := db.RunCommand(ctx, ping).Err(); err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				if measuring.Load() {
					ops.Add(1)
					lats[i] = append(lats[i], time.Since(t0))
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	measuring.Store(true)
	start := time.Now()
	time.Sleep(d)
	measuring.Store(false)
	elapsed := time.Since(start)
	stop.Store(true)
	wg.Wait()
	if firstErr != nil {
		return result{}, firstErr
	}
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	if len(all) == 0 {
		return result{}, errors.New("no pings completed")
	}
	slices.Sort(all)
	return result{
		opsPerSec: float64(ops.Load()) / elapsed.Seconds(),
		p50:       all[len(all)/2],
		p99:       all[len(all)*99/100],
	}, nil
}

func nproc() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "processor\t:")
}

// serveFerretDB runs embedded FerretDB on a free loopback port until SIGTERM.
func serveFerretDB() error {
	dir, err := os.MkdirTemp("", "spibench-ferretdb-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := l.Addr().String()
	_ = l.Close()
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: addr},
		Handler:   "sqlite",
		SQLiteURL: "file:" + dir + "/",
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := f.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			fmt.Fprintln(os.Stderr, "ferretdb:", err)
		}
	}()
	// Wait until it accepts connections before announcing the URI.
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			_ = c.Close()
			break
		}
		if i > 200 {
			return fmt.Errorf("FerretDB did not start listening on %s", addr)
		}
		time.Sleep(25 * time.Millisecond)
	}
	fmt.Printf("ready %s\n", f.MongoDBURI())
	<-done
	return nil
}
