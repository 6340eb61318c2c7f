// Command spibench measures spid against a reference MongoDB-protocol server in the same run
// and prints the ratio. Both servers run as child processes on loopback; the Go driver drives
// them from this process with the same settings.
//
// The reference is FerretDB (embedded, SQLite backend), started by re-running this program with
// -serve-ferretdb so that neither server shares a process with the load generator.
//
// A second measurement is spid's CPU time per SCRAM-SHA-256 login (a new connection and the
// SCRAM conversation on raw OP_MSG messages), read from /proc/<pid>/stat around the logins. The
// client reuses one SCRAM client, so its derived keys are cached and each login costs the client
// only HMACs; the server should likewise derive no key at login. One PBKDF2 derivation with the
// server's salt and iteration count, timed in this process, is the yardstick, and a connection
// with a single hello is the baseline.
//
// A third measurement is a logged-in client's ping p50 and p99 under each pre-login attack of
// issue 15 (attacks.go), against the same client at rest, alternating within each round.
package main

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/xdg-go/scram"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/spi-streams/spi/e2e/internal/benchkit"
)

func main() {
	spid := flag.String("spid", "../bin/spid", "path of the spid binary")
	duration := flag.Duration("duration", 3*time.Second, "measuring time of each round")
	rounds := flag.Int("rounds", 3, "rounds per server and concurrency; the median is reported")
	clients := flag.String("clients", "1,16", "comma-separated numbers of concurrent clients")
	loginDuration := flag.Duration("login-duration", 2*time.Second, "measuring time of each login round")
	loginClients := flag.String("login-clients", "1,4", "comma-separated numbers of concurrent clients logging in")
	serveFerret := flag.Bool("serve-ferretdb", false, "internal: run the reference server and print its URI")
	attackN := flag.Int("attack", -1, "internal: run pre-login attack number N against -attack-addr until SIGTERM")
	attackAddr := flag.String("attack-addr", "", "internal: the address -attack targets")
	flag.Parse()

	if *attackN >= 0 {
		if err := runAttacker(*attackN, *attackAddr); err != nil {
			fmt.Fprintln(os.Stderr, "attacker:", err)
			os.Exit(1)
		}
		return
	}
	if *serveFerret {
		if err := benchkit.ServeFerretDB("spibench"); err != nil {
			fmt.Fprintln(os.Stderr, "ferretdb:", err)
			os.Exit(1)
		}
		return
	}
	cfg := config{spid: *spid, duration: *duration, rounds: *rounds, loginDuration: *loginDuration}
	var err error
	if cfg.clients, err = parseCounts(*clients); err == nil {
		cfg.loginClients, err = parseCounts(*loginClients)
	}
	if err == nil && (cfg.rounds < 1 || cfg.duration <= 0 || cfg.loginDuration <= 0) {
		err = errors.New("-rounds, -duration and -login-duration must be positive")
	}
	if err == nil {
		err = run(cfg)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "spibench:", err)
		os.Exit(1)
	}
}

// child is a server running as a subprocess (benchkit.Child) and the credential a client
// logs in with.
type child struct {
	*benchkit.Child
	cred *options.Credential // nil: unauthenticated
}

func startChild(name string, path string, args ...string) (*child, error) {
	c, err := benchkit.StartChild(name, path, args...)
	if err != nil {
		return nil, err
	}
	return &child{Child: c}, nil
}

type result struct {
	opsPerSec float64
	p50, p99  time.Duration
}

// config is the command line.
type config struct {
	spid          string
	duration      time.Duration
	rounds        int
	clients       []int
	loginDuration time.Duration
	loginClients  []int
}

func parseCounts(list string) ([]int, error) {
	var counts []int
	for _, s := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad number of clients %q", s)
		}
		counts = append(counts, n)
	}
	return counts, nil
}

// initialCredentials is the part of spid's <data-dir>/initial-credentials.json used here.
type initialCredentials struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

func run(cfg config) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	dataDir, err := os.MkdirTemp("", "spibench-spid-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dataDir) }()
	spid, err := startChild("spid", cfg.spid, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
		"--data-dir", dataDir, "--log-level", "warn")
	if err != nil {
		return err
	}
	defer spid.Stop()
	// spid writes the file before it announces the data plane.
	b, err := os.ReadFile(dataDir + "/initial-credentials.json")
	if err != nil {
		return err
	}
	var creds initialCredentials
	if err := json.Unmarshal(b, &creds); err != nil {
		return fmt.Errorf("initial-credentials.json: %w", err)
	}
	if creds.Username == "" || creds.Password == "" {
		return errors.New("initial-credentials.json has no username or password")
	}
	spid.cred = &options.Credential{AuthMechanism: "SCRAM-SHA-256", AuthSource: "admin",
		Username: creds.Username, Password: creds.Password}
	ref, err := startChild("FerretDB", self, "-serve-ferretdb")
	if err != nil {
		return err
	}
	defer ref.Stop()
	// Embedded FerretDB v1 may not take SCRAM credentials: use them only if it does.
	ref.cred = spid.cred
	refAuth := "authenticated the same way"
	if err := pingOnce(ref.URI, ref.cred); err != nil {
		ref.cred = nil
		refAuth = "unauthenticated, as it rejects the login: " + lastPart(err.Error())
		if err := pingOnce(ref.URI, nil); err != nil {
			return fmt.Errorf("FerretDB: %w", err)
		}
	}

	fmt.Printf("ping round trips per second, Go driver v2, %d round(s) of %s each, median reported\n", cfg.rounds, cfg.duration)
	fmt.Printf("reference: FerretDB v1.24.2 embedded (SQLite), its own process; client and servers share %d CPUs\n", benchkit.NProc())
	fmt.Printf("spid: each pooled connection logs in as %q (SCRAM-SHA-256) before measuring; FerretDB: %s\n\n", creds.Username, refAuth)
	fmt.Printf("%-8s  %-9s  %12s  %9s  %9s\n", "clients", "server", "pings/s", "p50", "p99")
	for _, n := range cfg.clients {
		res := map[string][]result{}
		for range cfg.rounds {
			// Alternate servers within each round so drift in machine load hits both alike.
			for _, c := range []*child{spid, ref} {
				got, err := measure(c.URI, c.cred, n, cfg.duration)
				if err != nil {
					return fmt.Errorf("%s with %d clients: %w", c.Name, n, err)
				}
				res[c.Name] = append(res[c.Name], got)
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
	if err := loginBench(cfg, spid, creds); err != nil {
		return err
	}
	return attackBench(cfg, spid)
}

// lastPart is the first line of the innermost message of a chain of wrapped driver errors.
func lastPart(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	return strings.TrimSuffix(s, ".")
}

// clientOptions are the driver settings for both servers.
func clientOptions(uri string, cred *options.Credential) *options.ClientOptions {
	opts := options.Client().ApplyURI(uri).SetDirect(true)
	if cred != nil {
		opts.SetAuth(*cred)
	}
	return opts
}

// pingOnce connects, pings and disconnects.
func pingOnce(uri string, cred *options.Credential) error {
	c, err := mongo.Connect(clientOptions(uri, cred).SetTimeout(10 * time.Second))
	if err != nil {
		return err
	}
	defer func() { _ = c.Disconnect(context.Background()) }()
	return c.Database("admin").RunCommand(context.Background(), bson.D{{Key: "ping", Value: 1}}).Err()
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
func measure(uri string, cred *options.Credential, n int, d time.Duration) (result, error) {
	opts := clientOptions(uri, cred).SetMaxPoolSize(uint64(n)).SetMinPoolSize(uint64(n))
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

// loginBench measures spid's CPU time per SCRAM-SHA-256 login and per connection with one hello,
// and the client-side cost of one key derivation as the yardstick.
func loginBench(cfg config, spid *child, creds initialCredentials) error {
	u, err := url.Parse(spid.URI)
	if err != nil {
		return err
	}
	addr, pid := u.Host, spid.Cmd.Process.Pid
	tick, tickSource := clockTick()
	if _, err := procCPU(pid, tick); err != nil {
		return fmt.Errorf("reading spid's CPU time: %w", err)
	}
	// One client for every login: it derives the keys once, in the warm-up below, and then only
	// computes HMACs.
	client, err := scram.SHA256.NewClient(creds.Username, creds.Password, "")
	if err != nil {
		return err
	}
	var kf scram.KeyFactors
	for i := range 50 {
		if err := helloConn(addr, 2); err != nil {
			return fmt.Errorf("hello: %w", err)
		}
		f, err := login(addr, client)
		if err != nil {
			return fmt.Errorf("SCRAM-SHA-256 login: %w", err)
		}
		if i == 0 {
			kf = f
		}
	}

	type op struct {
		name string
		fn   func() error
	}
	ops := []op{
		{opHello, func() error { return helloConn(addr, 1) }},
		{op2Hellos, func() error { return helloConn(addr, 2) }},
		{opLogin, func() error { _, err := login(addr, client); return err }},
	}
	type key struct {
		op      string
		clients int
	}
	rates := map[key][]float64{}
	totals := map[key]loadResult{}
	for range cfg.rounds {
		for _, n := range cfg.loginClients {
			// Alternate the operations within each round so drift in machine load hits both alike.
			for _, o := range ops {
				r, err := runLoad(pid, tick, n, cfg.loginDuration, o.fn)
				if err != nil {
					return fmt.Errorf("%s with %d clients: %w", o.name, n, err)
				}
				k := key{o.name, n}
				rates[k] = append(rates[k], float64(r.ops)/r.wall.Seconds())
				t := totals[k]
				t.ops += r.ops
				t.cpu += r.cpu
				totals[k] = t
			}
		}
	}
	derivation, err := derivationCPU(creds, kf, 20)
	if err != nil {
		return err
	}

	fmt.Printf("spid CPU time per login and per connection, each a new TCP connection on loopback, %d round(s) of %s each\n", cfg.rounds, cfg.loginDuration)
	fmt.Printf("server CPU: utime+stime of spid from /proc/%d/stat (tick %s, %s); rate: median of the rounds\n", pid, tick, tickSource)
	fmt.Printf("the client reuses one SCRAM client, so its keys are derived once and cached\n\n")
	fmt.Printf("%-8s  %-24s  %12s  %14s  %9s\n", "clients", "per connection", "per second", "server CPU/op", "ops")
	sum := map[string]loadResult{}
	for _, n := range cfg.loginClients {
		for _, o := range ops {
			k := key{o.name, n}
			t := totals[k]
			fmt.Printf("%-8d  %-24s  %12.0f  %14s  %9d\n", n, o.name, medianFloat(rates[k]), micros(t.perOp()), t.ops)
			a := sum[o.name]
			a.ops, a.cpu = a.ops+t.ops, a.cpu+t.cpu
			sum[o.name] = a
		}
	}
	fmt.Println()
	logins, hellos, twoHellos := sum[opLogin], sum[opHello], sum[op2Hellos]
	fmt.Printf("server CPU per SCRAM-SHA-256 login:  %s   (%d logins, each on its own new connection)\n", micros(logins.perOp()), logins.ops)
	fmt.Printf("one PBKDF2-SHA-256 derivation (%d iterations) on this machine: %s   (mean of 20, CPU time of this process)\n", kf.Iters, micros(derivation))
	fmt.Printf("ratio login / derivation: %.3fx   (goal: well below 1: the server derives no key at login)\n", float64(logins.perOp())/float64(derivation))
	fmt.Printf("server CPU per connection + hello (baseline): %s   (%d connections)\n", micros(hellos.perOp()), hellos.ops)
	fmt.Printf("login minus connection + 2 hellos (the same round trips): %s of SCRAM work\n", micros(logins.perOp()-twoHellos.perOp()))
	return nil
}

func micros(d time.Duration) string {
	return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond))
}

func medianFloat(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// loadResult is the work done in one measurement and spid's CPU time for it.
type loadResult struct {
	ops  int64
	wall time.Duration
	cpu  time.Duration
}

func (r loadResult) perOp() time.Duration {
	if r.ops == 0 {
		return 0
	}
	return r.cpu / time.Duration(r.ops)
}

// runLoad runs fn from n goroutines for d and reads the server's CPU time around all of it, so
// every operation counted is one the CPU time covers.
func runLoad(pid int, tick time.Duration, n int, d time.Duration, fn func() error) (loadResult, error) {
	cpu0, err := procCPU(pid, tick)
	if err != nil {
		return loadResult{}, err
	}
	var (
		stop     atomic.Bool
		ops      atomic.Int64
		firstErr error
		errOnce  sync.Once
		wg       sync.WaitGroup
	)
	start := time.Now()
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if err := fn(); err != nil {
					errOnce.Do(func() { firstErr = err })
					stop.Store(true)
					return
				}
				ops.Add(1)
			}
		}()
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	wall := time.Since(start)
	if firstErr != nil {
		return loadResult{}, firstErr
	}
	// Let the server finish with the last connections it saw closed.
	time.Sleep(100 * time.Millisecond)
	cpu1, err := procCPU(pid, tick)
	if err != nil {
		return loadResult{}, err
	}
	return loadResult{ops: ops.Load(), wall: wall, cpu: cpu1 - cpu0}, nil
}

// procCPU is a process's user and system CPU time, all threads, from /proc/<pid>/stat.
func procCPU(pid int, tick time.Duration) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may contain spaces.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc/<pid>/stat format")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, errors.New("unexpected /proc/<pid>/stat format")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("unexpected /proc/<pid>/stat format")
	}
	return time.Duration(utime+stime) * tick, nil
}

// clockTick is the unit of /proc/<pid>/stat's CPU times, from getconf CLK_TCK (USER_HZ, 100 on
// every mainstream Linux architecture).
func clockTick() (time.Duration, string) {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if hz, err := strconv.Atoi(strings.TrimSpace(string(out))); err == nil && hz > 0 {
			return time.Second / time.Duration(hz), "getconf CLK_TCK"
		}
	}
	return 10 * time.Millisecond, "assumed 100 Hz"
}

// derivationCPU is this process's CPU time per key derivation as a SCRAM client does it (PBKDF2
// with the server's salt and iteration count, then the client and server keys), each with a
// fresh client so that nothing is cached.
func derivationCPU(creds initialCredentials, kf scram.KeyFactors, n int) (time.Duration, error) {
	var before, after syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &before); err != nil {
		return 0, err
	}
	for range n {
		c, err := scram.SHA256.NewClient(creds.Username, creds.Password, "")
		if err != nil {
			return 0, err
		}
		if _, err := c.GetStoredCredentialsWithError(kf); err != nil {
			return 0, err
		}
	}
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &after); err != nil {
		return 0, err
	}
	cpu := func(r syscall.Rusage) time.Duration {
		return time.Duration(r.Utime.Nano() + r.Stime.Nano())
	}
	return (cpu(after) - cpu(before)) / time.Duration(n), nil
}

// Operations of the login measurement, each on a new connection.
const (
	opHello   = "connect + hello"
	op2Hellos = "connect + 2 hellos"
	opLogin   = "connect + SCRAM-SHA-256"
)

// helloConn opens a connection, sends n hellos one after the other and closes it.
func helloConn(addr string, n int) error {
	conn, err := dial(addr)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	for i := range n {
		if _, err := roundTrip(conn, int32(i+1), bson.D{{Key: "hello", Value: 1}, {Key: "$db", Value: "admin"}}); err != nil {
			return err
		}
	}
	return nil
}

// login opens a connection, authenticates it with SCRAM-SHA-256 (saslStart, then saslContinue
// with skipEmptyExchange) and closes it. It returns the server's salt and iteration count.
func login(addr string, client *scram.Client) (scram.KeyFactors, error) {
	var kf scram.KeyFactors
	conn, err := dial(addr)
	if err != nil {
		return kf, err
	}
	defer func() { _ = conn.Close() }()
	conv := client.NewConversation()
	first, err := conv.Step("")
	if err != nil {
		return kf, err
	}
	reply, err := roundTrip(conn, 1, bson.D{
		{Key: "saslStart", Value: 1},
		{Key: "mechanism", Value: "SCRAM-SHA-256"},
		{Key: "payload", Value: bson.Binary{Data: []byte(first)}},
		{Key: "options", Value: bson.D{{Key: "skipEmptyExchange", Value: true}}},
		{Key: "$db", Value: "admin"},
	})
	if err != nil {
		return kf, err
	}
	id, ok := reply.Lookup("conversationId").AsInt64OK()
	if !ok {
		return kf, errors.New("saslStart reply without conversationId")
	}
	_, serverFirst, ok := reply.Lookup("payload").BinaryOK()
	if !ok {
		return kf, errors.New("saslStart reply without payload")
	}
	if kf, err = keyFactors(string(serverFirst)); err != nil {
		return kf, err
	}
	final, err := conv.Step(string(serverFirst))
	if err != nil {
		return kf, err
	}
	reply, err = roundTrip(conn, 2, bson.D{
		{Key: "saslContinue", Value: 1},
		{Key: "conversationId", Value: int32(id)},
		{Key: "payload", Value: bson.Binary{Data: []byte(final)}},
		{Key: "$db", Value: "admin"},
	})
	if err != nil {
		return kf, err
	}
	if done, _ := reply.Lookup("done").BooleanOK(); !done {
		return kf, errors.New("saslContinue did not end the conversation despite skipEmptyExchange")
	}
	_, serverFinal, ok := reply.Lookup("payload").BinaryOK()
	if !ok {
		return kf, errors.New("saslContinue reply without payload")
	}
	if _, err := conv.Step(string(serverFinal)); err != nil {
		return kf, fmt.Errorf("server-final message: %w", err)
	}
	if !conv.Valid() {
		return kf, errors.New("server signature not verified")
	}
	return kf, nil
}

// keyFactors reads the salt and iteration count from a SCRAM server-first message.
func keyFactors(msg string) (scram.KeyFactors, error) {
	var kf scram.KeyFactors
	for _, attr := range strings.Split(msg, ",") {
		switch {
		case strings.HasPrefix(attr, "s="):
			salt, err := base64.StdEncoding.DecodeString(attr[2:])
			if err != nil {
				return kf, fmt.Errorf("server-first message: salt: %w", err)
			}
			kf.Salt = string(salt)
		case strings.HasPrefix(attr, "i="):
			n, err := strconv.Atoi(attr[2:])
			if err != nil {
				return kf, fmt.Errorf("server-first message: iteration count: %w", err)
			}
			kf.Iters = n
		}
	}
	if kf.Salt == "" || kf.Iters <= 0 {
		return kf, fmt.Errorf("server-first message without salt or iteration count: %q", msg)
	}
	return kf, nil
}

func dial(addr string) (net.Conn, error) {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		_ = conn.Close()
		return nil, err
	}
	return conn, nil
}

const opMsg = 2013

// roundTrip sends cmd as an OP_MSG and returns the body of the reply, or an error for a reply
// that is not ok: 1.
func roundTrip(conn net.Conn, requestID int32, cmd bson.D) (bson.Raw, error) {
	body, err := bson.Marshal(cmd)
	if err != nil {
		return nil, err
	}
	// Header (length, requestID, responseTo, opCode), flagBits, one kind 0 section.
	msg := make([]byte, 21, 21+len(body))
	binary.LittleEndian.PutUint32(msg[0:], uint32(21+len(body)))
	binary.LittleEndian.PutUint32(msg[4:], uint32(requestID))
	binary.LittleEndian.PutUint32(msg[12:], opMsg)
	msg = append(msg, body...)
	if _, err := conn.Write(msg); err != nil {
		return nil, err
	}

	var hdr [16]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.LittleEndian.Uint32(hdr[0:])
	if n < 21+5 || n > 48<<20 {
		return nil, fmt.Errorf("reply of %d bytes", n)
	}
	if op := binary.LittleEndian.Uint32(hdr[12:]); op != opMsg {
		return nil, fmt.Errorf("reply with opCode %d", op)
	}
	rest := make([]byte, n-16)
	if _, err := io.ReadFull(conn, rest); err != nil {
		return nil, err
	}
	if rest[4] != 0 {
		return nil, fmt.Errorf("reply starts with a kind %d section", rest[4])
	}
	doc := bson.Raw(rest[5:])
	if l := binary.LittleEndian.Uint32(doc); int(l) <= len(doc) {
		doc = doc[:l]
	}
	if err := doc.Validate(); err != nil {
		return nil, fmt.Errorf("reply: %w", err)
	}
	if ok, _ := doc.Lookup("ok").AsFloat64OK(); ok != 1 {
		code, _ := doc.Lookup("code").AsInt64OK()
		msg, _ := doc.Lookup("errmsg").StringValueOK()
		return nil, fmt.Errorf("command failed (code %d): %s", code, msg)
	}
	return doc, nil
}
