// Package benchkit holds what the benchmark commands of e2e/cmd share: child processes for
// spid and for embedded FerretDB, CPU time from /proc, and medians. Each benchmark runs the
// servers it measures in processes of their own, so that their CPU time can be read apart from
// the load generator's.
package benchkit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/spi-streams/spi/admin/digest"
)

// Median is the median of ds (the upper one of an even count); ds is not reordered. It panics
// on an empty ds.
func Median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// ProcCPU is a process's user and system CPU time from /proc/<pid>/stat (fields 14 and 15, in
// ticks of USER_HZ, 100 on Linux: proc(5)); 0 if it cannot be read.
func ProcCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	var u, s int64
	_, _ = fmt.Sscan(f[11], &u)
	_, _ = fmt.Sscan(f[12], &s)
	return time.Duration(u+s) * 10 * time.Millisecond
}

// NProc is the number of CPUs /proc/cpuinfo lists; 0 if it cannot be read.
func NProc() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "processor\t:")
}

// Child is a server running as a child process, which printed the mongodb:// URI it serves.
type Child struct {
	Name string
	Cmd  *exec.Cmd
	URI  string
}

var uriLine = regexp.MustCompile(`(mongodb://[^"\s]+)`)

// StartChild runs path with args and waits up to 30 s for the first mongodb:// URI on its
// standard output. The child's standard error is discarded.
func StartChild(name, path string, args ...string) (*Child, error) {
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
		return &Child{Name: name, Cmd: cmd, URI: u}, nil
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("%s did not start", name)
	}
}

// Stop ends the child with SIGTERM, and SIGKILL after 10 s.
func (c *Child) Stop() { stop(c.Cmd, 10*time.Second) }

func stop(cmd *exec.Cmd, grace time.Duration) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-done
	}
}

// ServeFerretDB runs embedded FerretDB (SQLite in a temporary directory named after prefix) on
// a free loopback port, prints "ready <mongodb URI>" once it accepts connections, and serves
// until SIGTERM or SIGINT. A benchmark runs it in a child process of itself (StartChild).
func ServeFerretDB(prefix string) error {
	dir, err := os.MkdirTemp("", prefix+"-ferretdb-")
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
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := f.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			fmt.Fprintln(os.Stderr, "ferretdb:", err)
		}
	}()
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

// Spid is spid running as a child process on free loopback ports with a fresh data directory,
// with an Admin API client (HTTP, digest-authenticated with the first-start API key) and a Go
// driver client logged in as the first-start admin user.
type Spid struct {
	Cmd     *exec.Cmd
	DataDir string
	// Admin is the Admin API's base URL, Group the project ID of the first-start key.
	Admin, Group string
	HTTP         *http.Client
	Client       *mongo.Client
}

var (
	printedURI   = regexp.MustCompile(`mongosh "(mongodb://[^/"]+/)"`)
	printedAdmin = regexp.MustCompile(`Control plane \(Admin API(?: at |\): )(https?://[^)\s]+)`)
)

// StartSpid starts the spid binary at path with log level warn (its standard error goes to
// this process's), waits up to 30 s for it to print its addresses, and logs in with the
// credentials it wrote to initial-credentials.json. timeout is the driver client's per-operation
// timeout.
func StartSpid(path, prefix string, timeout time.Duration) (*Spid, error) {
	dir, err := os.MkdirTemp("", prefix+"-spid-")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--data-dir", dir, "--log-level", "warn")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Spid{Cmd: cmd, DataDir: dir}
	found := make(chan [2]string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		admin := ""
		for sc.Scan() {
			if m := printedAdmin.FindStringSubmatch(sc.Text()); m != nil {
				admin = m[1]
			}
			if m := printedURI.FindStringSubmatch(sc.Text()); m != nil {
				found <- [2]string{m[1], admin}
				break
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	var uri string
	select {
	case m := <-found:
		uri, s.Admin = m[0], m[1]
	case <-time.After(30 * time.Second):
		s.Stop()
		return nil, errors.New("spid did not start")
	}
	b, err := os.ReadFile(dir + "/initial-credentials.json")
	if err != nil {
		s.Stop()
		return nil, err
	}
	var creds struct {
		GroupID    string `json:"groupId"`
		PublicKey  string `json:"publicKey"`
		PrivateKey string `json:"privateKey"`
		Username   string `json:"username"`
		Password   string `json:"password"`
	}
	if err := json.Unmarshal(b, &creds); err != nil {
		s.Stop()
		return nil, fmt.Errorf("initial-credentials.json: %w", err)
	}
	s.Group = creds.GroupID
	s.HTTP = &http.Client{Transport: &digest.Transport{Username: creds.PublicKey, Password: creds.PrivateKey}, Timeout: 30 * time.Second}
	s.Client, err = mongo.Connect(options.Client().ApplyURI(uri).SetDirect(true).SetTimeout(timeout).
		SetAuth(options.Credential{AuthSource: "admin", Username: creds.Username, Password: creds.Password}))
	if err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// Stop disconnects, ends spid with SIGTERM (SIGKILL after 15 s) and removes its data directory.
func (s *Spid) Stop() {
	if s.Client != nil {
		_ = s.Client.Disconnect(context.Background())
	}
	stop(s.Cmd, 15*time.Second)
	_ = os.RemoveAll(s.DataDir)
}

// CreateConnection creates a connection registry entry in the default workspace through the
// Admin API (POST …/streams/default/connections); conn is its JSON body, a StreamsConnection.
func (s *Spid) CreateConnection(conn map[string]any) error {
	body, err := json.Marshal(conn)
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodPost, s.Admin+"/api/atlas/v2/groups/"+s.Group+"/streams/default/connections", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/vnd.atlas.2023-02-01+json")
	resp, err := s.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("creating connection %v: %d %s", conn["name"], resp.StatusCode, out)
	}
	return nil
}
