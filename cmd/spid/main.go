// Command spid is the spi server: a self-hosted stream processing workspace that speaks the
// MongoDB wire protocol the way an Atlas Stream Processing workspace does, with an HTTP control
// plane shaped like the Atlas Admin API.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spi-streams/spi/admin"
	"github.com/spi-streams/spi/audit"
	"github.com/spi-streams/spi/commands"
	_ "github.com/spi-streams/spi/connectors/all"
	"github.com/spi-streams/spi/connectors/sample"
	"github.com/spi-streams/spi/metrics"
	"github.com/spi-streams/spi/processor"
	"github.com/spi-streams/spi/store"
	"github.com/spi-streams/spi/wire"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "spid:", err)
		os.Exit(1)
	}
}

type config struct {
	listen          string
	tlsMode         string
	tlsCert         string
	tlsKey          string
	tlsCA           string
	allowInsecure   bool
	adminListen     string
	adminTLSCert    string
	adminTLSKey     string
	adminIdle       time.Duration
	workspacePorts  admin.PortRange
	auditMaxBytes   int64
	workspaceHost   string
	dataDir         string
	logLevel        string
	logFormat       string
	shutdownTimeout time.Duration
	metricsListen   string
	checkpoint      time.Duration
	maxProcessors   int
	procMemLimit    int64
	retryTimeout    time.Duration
	sampleRate      float64
	limits          wire.Limits
	memoryLimit     byteSize
	auditKeep       int
	loginFree       int
	finishLimits    func()
}

// byteSize is a flag value in bytes, written as a number with an optional KiB, MiB or GiB
// (or KB, MB, GB: 1000-based) suffix.
type byteSize int64

func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }

func (b *byteSize) Set(s string) error {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return fmt.Errorf("%q is not a size in bytes (e.g. 65536, 64KiB, 256MiB, 1GiB)", s)
	}
	*b = byteSize(n * mult)
	return nil
}

// limitFlags registers the data plane's resource limits (README "Limits"), each with its
// SPI_* variable.
func limitFlags(fs *flag.FlagSet, c *config) error {
	def := wire.DefaultLimits()
	var errs []error
	intVar := func(p *int, name, envName string, v int, usage string) {
		if e, ok := os.LookupEnv(envName); ok && e != "" {
			n, err := strconv.Atoi(e)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", envName, err))
			}
			v = n
		}
		fs.IntVar(p, name, v, usage+" ["+envName+"]")
	}
	durVar := func(p *time.Duration, name, envName string, v time.Duration, usage string) {
		if e, ok := os.LookupEnv(envName); ok && e != "" {
			d, err := time.ParseDuration(e)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", envName, err))
			}
			v = d
		}
		fs.DurationVar(p, name, v, usage+" ["+envName+"]")
	}
	sizeVar := func(p *byteSize, name, envName string, v int64, usage string) {
		*p = byteSize(v)
		if e, ok := os.LookupEnv(envName); ok && e != "" {
			if err := p.Set(e); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", envName, err))
			}
		}
		fs.Var(p, name, usage+" ["+envName+"]")
	}
	l := &c.limits
	intVar(&l.MaxConnections, "max-connections", "SPI_MAX_CONNECTIONS", def.MaxConnections, "most open data-plane connections; more are refused with an error (0: no limit)")
	durVar(&l.HandshakeTimeout, "handshake-timeout", "SPI_HANDSHAKE_TIMEOUT", def.HandshakeTimeout, "time from accept to a connection's first complete message (TLS handshake and hello)")
	durVar(&l.UnauthIdleTimeout, "unauth-idle-timeout", "SPI_UNAUTH_IDLE_TIMEOUT", def.UnauthIdleTimeout, "closes a connection idle this long before it authenticates")
	durVar(&l.ReceiveTimeout, "receive-timeout", "SPI_RECEIVE_TIMEOUT", def.ReceiveTimeout, "minimum receive rate: a message's header and each 64 KiB of it must arrive within this")
	durVar(&l.WriteTimeout, "write-timeout", "SPI_WRITE_TIMEOUT", def.WriteTimeout, "time a client may take to read one reply")
	var preAuth, pending, preAuthPending byteSize
	sizeVar(&preAuth, "preauth-max-message", "SPI_PREAUTH_MAX_MESSAGE", int64(def.PreAuthMaxMessage), "largest message, compressed or uncompressed, before authentication")
	sizeVar(&pending, "max-pending-bytes", "SPI_MAX_PENDING_BYTES", def.MaxPendingBytes, "server-wide budget of bytes held for incoming messages beyond 64 KiB per connection")
	sizeVar(&preAuthPending, "preauth-pending-bytes", "SPI_PREAUTH_PENDING_BYTES", def.PreAuthPendingBytes, "share of --max-pending-bytes unauthenticated connections may hold")
	intVar(&l.MaxLargeDecompressions, "max-large-decompressions", "SPI_MAX_LARGE_DECOMPRESSIONS", def.MaxLargeDecompressions, "decompressions of over 1 MiB that run at once")
	sizeVar(&c.memoryLimit, "memory-limit", "SPI_MEMORY_LIMIT", 0, "soft memory limit of the Go runtime (debug.SetMemoryLimit); 0: none, or GOMEMLIMIT")
	intVar(&c.loginFree, "login-failures-free", "SPI_LOGIN_FAILURES_FREE", 30, "authentication failures an address or user may have (halving every minute) before the login throttle slows it")
	intVar(&c.auditKeep, "audit-keep", "SPI_AUDIT_KEEP", audit.DefaultKeep, "rotated audit log files kept beside the live one")
	c.finishLimits = func() {
		l.PreAuthMaxMessage = int(min(int64(preAuth), wire.MaxMessageSize))
		l.MaxPendingBytes = int64(pending)
		l.PreAuthPendingBytes = int64(preAuthPending)
	}
	return errors.Join(errs...)
}

// parseConfig reads flags, falling back to SPI_* environment variables, then to defaults that
// run with nothing installed.
func parseConfig(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("spid", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.listen, "listen", env("SPI_LISTEN", "127.0.0.1:27017"), "data-plane address of the default workspace (host:port) [SPI_LISTEN]")
	fs.StringVar(&c.tlsMode, "tls-mode", env("SPI_TLS_MODE", ""), "data-plane TLS: disabled, allowed or required (default: required when --tls-cert is set) [SPI_TLS_MODE]")
	fs.StringVar(&c.tlsCert, "tls-cert", env("SPI_TLS_CERT", ""), "PEM certificate (chain) of the data plane [SPI_TLS_CERT]")
	fs.StringVar(&c.tlsKey, "tls-key", env("SPI_TLS_KEY", ""), "PEM private key of --tls-cert [SPI_TLS_KEY]")
	fs.StringVar(&c.tlsCA, "tls-ca", env("SPI_TLS_CA", ""), "PEM CA bundle that signs client certificates for MONGODB-X509 [SPI_TLS_CA]")
	fs.BoolVar(&c.allowInsecure, "allow-insecure", env("SPI_ALLOW_INSECURE", "") == "true", "allow a data plane without TLS on a non-loopback address [SPI_ALLOW_INSECURE]")
	fs.StringVar(&c.adminListen, "admin-listen", env("SPI_ADMIN_LISTEN", "127.0.0.1:8080"), "control-plane (Admin API) address [SPI_ADMIN_LISTEN]")
	fs.StringVar(&c.adminTLSCert, "admin-tls-cert", env("SPI_ADMIN_TLS_CERT", ""), "PEM certificate (chain) of the Admin API; with it the Admin API serves HTTPS only [SPI_ADMIN_TLS_CERT]")
	fs.StringVar(&c.adminTLSKey, "admin-tls-key", env("SPI_ADMIN_TLS_KEY", ""), "PEM private key of --admin-tls-cert [SPI_ADMIN_TLS_KEY]")
	ports := env("SPI_WORKSPACE_PORTS", admin.DefaultWorkspacePorts.String())
	fs.StringVar(&ports, "workspace-ports", ports, "ports workspaces created through the Admin API may listen on, LO-HI [SPI_WORKSPACE_PORTS]")
	c.auditMaxBytes = audit.DefaultMaxBytes
	if v := env("SPI_AUDIT_MAX_BYTES", ""); v != "" {
		if _, err := fmt.Sscan(v, &c.auditMaxBytes); err != nil || c.auditMaxBytes < 1024 {
			return c, fmt.Errorf("SPI_AUDIT_MAX_BYTES must be a number of bytes, at least 1024, not %q", v)
		}
	}
	fs.Int64Var(&c.auditMaxBytes, "audit-max-bytes", c.auditMaxBytes, "size at which an audit log file is rotated (--audit-keep older files are kept) [SPI_AUDIT_MAX_BYTES]")
	idle, err := time.ParseDuration(env("SPI_ADMIN_IDLE_TIMEOUT", "2m"))
	if err != nil {
		return c, fmt.Errorf("SPI_ADMIN_IDLE_TIMEOUT: %w", err)
	}
	fs.DurationVar(&c.adminIdle, "admin-idle-timeout", idle, "an idle keep-alive connection to the Admin API is closed after this long [SPI_ADMIN_IDLE_TIMEOUT]")
	fs.StringVar(&c.workspaceHost, "workspace-host", env("SPI_WORKSPACE_HOST", "127.0.0.1"), "host new workspaces listen on when the API names no address [SPI_WORKSPACE_HOST]")
	fs.StringVar(&c.dataDir, "data-dir", env("SPI_DATA_DIR", "data"), "directory for metadata, the master key and audit logs [SPI_DATA_DIR]")
	fs.StringVar(&c.logLevel, "log-level", env("SPI_LOG_LEVEL", "info"), "log level: debug, info, warn or error [SPI_LOG_LEVEL]")
	fs.StringVar(&c.logFormat, "log-format", env("SPI_LOG_FORMAT", "text"), "log format: text or json [SPI_LOG_FORMAT]")
	timeout, err := time.ParseDuration(env("SPI_SHUTDOWN_TIMEOUT", "30s"))
	if err != nil {
		return c, fmt.Errorf("SPI_SHUTDOWN_TIMEOUT: %w", err)
	}
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", timeout, "how long running commands may take to finish at shutdown [SPI_SHUTDOWN_TIMEOUT]")
	fs.StringVar(&c.metricsListen, "metrics-listen", env("SPI_METRICS_LISTEN", ""), "serve Prometheus /metrics on this address instead of the Admin API's [SPI_METRICS_LISTEN]")
	durations := []struct {
		dst        *time.Duration
		name, env  string
		def, usage string
	}{
		{&c.checkpoint, "checkpoint-interval", "SPI_CHECKPOINT_INTERVAL", "5s", "time between a running processor's checkpoints"},
		{&c.retryTimeout, "processor-retry-timeout", "SPI_PROCESSOR_RETRY_TIMEOUT", "5m", "how long a processor retries connection and transient errors before it is FAILED"},
	}
	for _, d := range durations {
		v, err := time.ParseDuration(env(d.env, d.def))
		if err != nil {
			return c, fmt.Errorf("%s: %w", d.env, err)
		}
		fs.DurationVar(d.dst, d.name, v, d.usage+" ["+d.env+"]")
	}
	maxProcs, err := strconv.Atoi(env("SPI_MAX_PROCESSORS", strconv.Itoa(processor.DefaultMaxProcessors)))
	if err != nil {
		return c, fmt.Errorf("SPI_MAX_PROCESSORS: %w", err)
	}
	fs.IntVar(&c.maxProcessors, "max-processors", maxProcs, "most stream processors one workspace may hold [SPI_MAX_PROCESSORS]")
	memLimit, err := strconv.ParseInt(env("SPI_PROCESSOR_MEMORY_LIMIT", "0"), 10, 64)
	if err != nil {
		return c, fmt.Errorf("SPI_PROCESSOR_MEMORY_LIMIT: %w", err)
	}
	fs.Int64Var(&c.procMemLimit, "processor-memory-limit", memLimit, "operator-state limit of each processor in bytes; 0 follows the tier (80% of its RAM) [SPI_PROCESSOR_MEMORY_LIMIT]")
	rate, err := strconv.ParseFloat(env("SPI_SAMPLE_RATE", "10"), 64)
	if err != nil {
		return c, fmt.Errorf("SPI_SAMPLE_RATE: %w", err)
	}
	fs.Float64Var(&c.sampleRate, "sample-rate", rate, "documents per second of sample_stream_solar when $source.config.rate is not set [SPI_SAMPLE_RATE]")
	if err := limitFlags(fs, &c); err != nil {
		return c, err
	}
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	c.finishLimits()
	if c.limits.MaxConnections < 0 || c.limits.MaxLargeDecompressions < 1 || c.auditKeep < 0 || c.loginFree < 1 {
		return c, errors.New("--max-connections and --audit-keep must be 0 or more, --max-large-decompressions and --login-failures-free 1 or more")
	}
	if c.limits.PreAuthMaxMessage < 1024 {
		return c, errors.New("--preauth-max-message must be at least 1KiB: authentication needs a few kilobytes")
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *showVersion {
		return c, errVersion
	}
	if c.workspacePorts, err = admin.ParsePortRange(ports); err != nil {
		return c, fmt.Errorf("--workspace-ports: %w", err)
	}
	if c.auditMaxBytes < 1024 {
		return c, fmt.Errorf("--audit-max-bytes must be at least 1024, not %d", c.auditMaxBytes)
	}
	if c.adminIdle <= 0 {
		return c, fmt.Errorf("--admin-idle-timeout must be positive, not %v", c.adminIdle)
	}
	return c, nil
}

var errVersion = errors.New("version requested")

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

func newLogger(c config, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format must be text or json, not %q", c.logFormat)
}

// listeners opens and closes workspaces' data-plane listeners on the wire server.
type listeners struct {
	srv           *wire.Server
	log           *slog.Logger
	tls           *tls.Config
	mode          wire.TLSMode
	allowInsecure bool
	wg            sync.WaitGroup
	// failed hears about a listener that stopped for good; spid then stops.
	failed chan error
}

// bind listens on addr with the data plane's TLS settings. Plain TCP on a non-loopback address
// needs --allow-insecure: credentials would cross the network in the clear.
func (ls *listeners) bind(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if ls.mode != wire.TLSRequired && !ls.allowInsecure && !isLoopback(host) {
		return nil, fmt.Errorf("%s is not a loopback address: serve it with TLS (--tls-cert, --tls-key) or pass --allow-insecure", addr)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return wire.TLSListener(l, ls.tls, ls.mode), nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// serve serves an already bound listener for a workspace.
func (ls *listeners) serve(name string, l net.Listener) {
	ls.wg.Add(1)
	go func() {
		defer ls.wg.Done()
		err := ls.srv.ServeTagged(l, name)
		if err != nil && !errors.Is(err, wire.ErrServerClosed) && !errors.Is(err, wire.ErrListenerClosed) {
			ls.log.Error("workspace listener failed for good; stopping spid", "workspace", name, "err", err)
			select {
			case ls.failed <- fmt.Errorf("data plane: the listener of workspace %s failed: %w", name, err):
			default:
			}
		}
	}()
}

// Open implements admin.Listeners.
func (ls *listeners) Open(name, addr string) (string, error) {
	l, err := ls.bind(addr)
	if err != nil {
		return "", err
	}
	ls.serve(name, l)
	ls.log.Info("workspace listening", "workspace", name, "addr", l.Addr().String())
	return l.Addr().String(), nil
}

// Close implements admin.Listeners.
func (ls *listeners) Close(name string) {
	ls.srv.CloseTag(name)
	ls.log.Info("workspace listener closed", "workspace", name)
}

func run(args []string, stdout, stderr io.Writer) error {
	c, err := parseConfig(args, stderr)
	if errors.Is(err, errVersion) {
		_, err := fmt.Fprintln(stdout, "spid", version)
		return err
	}
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	log, err := newLogger(c, stderr)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	if err := os.MkdirAll(c.dataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	key, err := store.LoadMasterKey(c.dataDir, os.Getenv("SPI_MASTER_KEY"))
	if err != nil {
		return err
	}
	backend, err := store.OpenBolt(c.dataDir)
	if err != nil {
		return err
	}
	st, err := store.Open(backend, key)
	if err != nil {
		_ = backend.Close()
		return err
	}
	defer func() { _ = st.Close() }()

	tlsCfg, mode, err := tlsConfig(c)
	if err != nil {
		return err
	}
	if c.memoryLimit > 0 {
		debug.SetMemoryLimit(int64(c.memoryLimit))
	}
	auditOpts := []audit.Option{audit.MaxBytes(c.auditMaxBytes), audit.Keep(c.auditKeep), audit.Logger(log)}
	dpAudit, err := audit.Open(filepath.Join(c.dataDir, "audit", "data-plane.jsonl"), auditOpts...)
	if err != nil {
		return err
	}
	defer func() { _ = dpAudit.Close() }()
	var project store.Project
	_ = st.View(func(tx *store.Txn) (err error) { project, err = tx.Project(); return err })
	mets := metrics.New()
	sample.DefaultRate = c.sampleRate
	procs := processor.NewManager(processor.Config{Store: st, Logger: log, Metrics: mets, GroupID: project.ID,
		CheckpointInterval: c.checkpoint, MaxProcessors: c.maxProcessors, MemoryLimit: c.procMemLimit, RetryTimeout: c.retryTimeout})
	srv := wire.NewServer(commands.New(commands.Options{Version: version, Logger: log, Store: st, Audit: dpAudit, Processors: procs,
		Metrics: mets, LoginFailuresFree: c.loginFree}), log)
	srv.SetLimits(c.limits)
	srv.SetMetrics(mets)
	ls := &listeners{srv: srv, log: log, tls: tlsCfg, mode: mode, allowInsecure: c.allowInsecure, failed: make(chan error, 1)}
	dataL, err := ls.bind(c.listen)
	if err != nil {
		return fmt.Errorf("data plane: %w", err)
	}
	adminL, adminScheme, err := listenAdmin(c)
	if err != nil {
		_ = dataL.Close()
		return fmt.Errorf("control plane: %w", err)
	}
	dataAddr := dataL.Addr().String()
	adminURL := adminScheme + "://" + hostForClients(adminL.Addr().(*net.TCPAddr))

	creds, err := initialize(st, c.dataDir, dataAddr, adminURL)
	if err != nil {
		_ = dataL.Close()
		_ = adminL.Close()
		return err
	}

	if creds != nil {
		procs.SetGroupID(creds.GroupID)
	}
	if err := procs.Resume(); err != nil {
		_ = dataL.Close()
		_ = adminL.Close()
		return fmt.Errorf("resuming processors: %w", err)
	}
	// Stop every processor with a final checkpoint before the store closes; their state stays
	// STARTED, so the next start resumes them.
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), c.shutdownTimeout)
		defer cancel()
		if err := procs.Shutdown(sctx); err != nil {
			log.Warn("processor shutdown", "err", err)
		}
		log.Info("processors checkpointed and stopped")
	}()

	var workspaces []store.Workspace
	if err := st.View(func(tx *store.Txn) (err error) { workspaces, err = tx.Workspaces(); return err }); err != nil {
		return err
	}
	servedDefault := false
	var others []servedWorkspace
	for _, ws := range workspaces {
		if ws.Name == admin.DefaultWorkspace {
			ls.serve(ws.Name, dataL)
			servedDefault = true
			continue
		}
		addr, err := ls.Open(ws.Name, ws.Address)
		if err != nil {
			log.Error("cannot listen for workspace; it is unreachable until its address is free", "workspace", ws.Name, "addr", ws.Address, "err", err)
		}
		others = append(others, servedWorkspace{name: ws.Name, addr: addr, err: err})
	}
	if !servedDefault {
		log.Warn("there is no workspace named default, so --listen serves nothing", "listen", dataAddr)
		_ = dataL.Close()
	}

	cpAudit, err := audit.Open(filepath.Join(c.dataDir, "audit", "control-plane.jsonl"), auditOpts...)
	if err != nil {
		return err
	}
	defer func() { _ = cpAudit.Close() }()
	api, err := admin.New(admin.Options{Store: st, Logger: log, Audit: cpAudit, Listeners: ls, WorkspaceHost: c.workspaceHost,
		WorkspacePorts: c.workspacePorts, Processors: procs})
	if err != nil {
		return err
	}
	handler := http.Handler(api)
	var metricsSrv *http.Server
	if c.metricsListen == "" {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", mets.Handler())
		mux.Handle("/", api)
		handler = mux
	} else {
		ml, err := net.Listen("tcp", c.metricsListen)
		if err != nil {
			return fmt.Errorf("--metrics-listen: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", mets.Handler())
		metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = metricsSrv.Serve(ml) }()
		defer func() { _ = metricsSrv.Close() }()
		log.Info("metrics listening", "addr", ml.Addr().String())
	}
	// Bounded requests: a header block of 64 KiB is ample for digest authentication, bodies are
	// bounded by the API (1 MiB), and idle keep-alive connections are closed.
	httpSrv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
		IdleTimeout: c.adminIdle, MaxHeaderBytes: 64 << 10, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	adminDone := make(chan error, 1)
	go func() { adminDone <- httpSrv.Serve(adminL) }()

	// `make shell` reads where this spid serves from here (the address may be a port 0 choice).
	ep, _ := json.Marshal(map[string]any{"dataPlane": hostForClients(dataL.Addr().(*net.TCPAddr)), "adminUrl": adminURL, "tls": mode == wire.TLSRequired})
	if err := store.WriteFileAtomic(filepath.Join(c.dataDir, "endpoints.json"), append(ep, '\n'), 0o600); err != nil {
		log.Warn("cannot write endpoints.json; make shell will not find this spid", "err", err)
	}
	log.Info("spid started", "version", version, "data-plane", dataAddr, "control-plane", adminURL, "data-dir", c.dataDir)
	printReady(stdout, c, creds, dataL.Addr().(*net.TCPAddr), adminURL, mode == wire.TLSRequired, others)

	var failed error
	select {
	case <-ctx.Done():
	case err := <-adminDone:
		return fmt.Errorf("control plane: %w", err)
	case failed = <-ls.failed:
	}
	// A second signal during the grace period gets Go's default behaviour: exit at once.
	stop()
	log.Info("shutting down; letting running commands finish", "timeout", c.shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), c.shutdownTimeout)
	defer cancel()
	if err := httpSrv.Shutdown(sctx); err != nil {
		log.Warn("control plane shutdown", "err", err)
	}
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown grace period ended; closed the remaining connections", "err", err)
	}
	ls.wg.Wait()
	if failed != nil {
		return failed
	}
	log.Info("stopped")
	return nil
}

// initialize creates the project on an empty data directory and returns the credentials to
// show once; on later starts it points the default workspace at the --listen address and
// returns nil.
func initialize(st *store.Store, dataDir, dataAddr, adminURL string) (*admin.InitialCredentials, error) {
	done, err := admin.Initialized(st)
	if err != nil {
		return nil, err
	}
	if done {
		err := st.Update(func(tx *store.Txn) error {
			ws, err := tx.Workspace(admin.DefaultWorkspace)
			if store.IsNotFound(err) || (err == nil && ws.Address == dataAddr) {
				return nil
			}
			if err != nil {
				return err
			}
			ws.Address = dataAddr
			ws.Updated = time.Now().UTC()
			return tx.PutWorkspace(ws)
		})
		return nil, err
	}
	creds, err := admin.NewInitialCredentials()
	if err != nil {
		return nil, err
	}
	creds.AdminURL = adminURL
	// The file is written before the project is committed: a crash in between leaves a file
	// that the next first start overwrites, never a project whose credentials were lost.
	b, err := json.MarshalIndent(creds, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := store.WriteFileAtomic(filepath.Join(dataDir, "initial-credentials.json"), append(b, '\n'), 0o600); err != nil {
		return nil, fmt.Errorf("writing initial-credentials.json: %w", err)
	}
	if err := admin.Bootstrap(st, creds, dataAddr); err != nil {
		return nil, err
	}
	return creds, nil
}

// printReady tells the operator how to connect. On first start it shows the generated
// credentials, once.
func printReady(w io.Writer, c config, creds *admin.InitialCredentials, data *net.TCPAddr, adminURL string, tlsOn bool, others []servedWorkspace) {
	var b strings.Builder
	fmt.Fprintf(&b, "spid %s is ready.\n", version)
	if creds != nil {
		credsPath, _ := filepath.Abs(filepath.Join(c.dataDir, "initial-credentials.json"))
		fmt.Fprintf(&b, "\nFirst start: created project %s with the %q workspace and these credentials.\n", creds.GroupID, admin.DefaultWorkspace)
		fmt.Fprintf(&b, "They are shown only now, and saved in %s (mode 0600).\n\n", credsPath)
		fmt.Fprintf(&b, "  Owner API key:     public %s  private %s\n", creds.PublicKey, creds.PrivateKey)
		fmt.Fprintf(&b, "  Database user:     %s / %s (atlasAdmin)\n\n", creds.Username, creds.Password)
		fmt.Fprintf(&b, "Control plane (Admin API at %s):\n", adminURL)
		// The credentials file keeps the private key out of the shell history.
		caHint := ""
		if strings.HasPrefix(adminURL, "https://") {
			caHint = " --ca-file <CA of --admin-tls-cert>"
		}
		fmt.Fprintf(&b, "  bin/spictl --config %s%s workspaces list\n\n", credsPath, caHint)
	} else {
		fmt.Fprintf(&b, "Control plane (Admin API): %s\n", adminURL)
	}
	flags := ""
	if tlsOn {
		flags = " --tls"
	}
	if creds != nil {
		flags += fmt.Sprintf(" --username %s --password '%s' --authenticationDatabase admin", creds.Username, creds.Password)
	} else {
		flags += " --username <user> --authenticationDatabase admin"
	}
	fmt.Fprintf(&b, "Data plane (workspace %q). Connect with:\n  mongosh %q%s\n", admin.DefaultWorkspace, mongoURI(data), flags)
	if len(others) > 0 {
		fmt.Fprintf(&b, "Other workspaces:\n")
		for _, o := range others {
			if o.err != nil {
				fmt.Fprintf(&b, "  %-20s not served: %v\n", o.name, o.err)
				continue
			}
			uri := "mongodb://" + o.addr + "/"
			if ta, err := net.ResolveTCPAddr("tcp", o.addr); err == nil {
				uri = mongoURI(ta)
			}
			fmt.Fprintf(&b, "  %-20s %s\n", o.name, uri)
		}
	}
	if creds == nil {
		fmt.Fprintf(&b, "Or, from the source tree: make shell\n")
	} else {
		fmt.Fprintf(&b, "Or, from the source tree (installs the pinned mongosh if needed): make shell\n")
	}
	_, _ = io.WriteString(w, b.String())
}

// servedWorkspace is a workspace other than default, with the address it is served on.
type servedWorkspace struct {
	name, addr string
	err        error
}

// listenAdmin opens the control plane's listener: HTTPS with --admin-tls-cert, plain HTTP
// only on a loopback address or with --allow-insecure (the API carries passwords in request
// bodies, like the data plane's logins).
func listenAdmin(c config) (net.Listener, string, error) {
	if (c.adminTLSCert == "") != (c.adminTLSKey == "") {
		return nil, "", errors.New("--admin-tls-cert and --admin-tls-key go together")
	}
	host, _, err := net.SplitHostPort(c.adminListen)
	if err != nil {
		return nil, "", fmt.Errorf("--admin-listen: %w", err)
	}
	if c.adminTLSCert == "" {
		if !c.allowInsecure && !isLoopback(host) {
			return nil, "", fmt.Errorf("%s is not a loopback address: serve the Admin API with TLS (--admin-tls-cert, --admin-tls-key) or pass --allow-insecure", c.adminListen)
		}
		l, err := net.Listen("tcp", c.adminListen)
		return l, "http", err
	}
	cert, err := tls.LoadX509KeyPair(c.adminTLSCert, c.adminTLSKey)
	if err != nil {
		return nil, "", fmt.Errorf("loading --admin-tls-cert/--admin-tls-key: %w", err)
	}
	l, err := net.Listen("tcp", c.adminListen)
	if err != nil {
		return nil, "", err
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
	return tls.NewListener(l, cfg), "https", nil
}

// tlsConfig builds the data plane's TLS configuration from the flags.
func tlsConfig(c config) (*tls.Config, wire.TLSMode, error) {
	modeName := c.tlsMode
	if modeName == "" {
		modeName = "disabled"
		if c.tlsCert != "" {
			modeName = "required"
		}
	}
	mode, err := wire.ParseTLSMode(modeName)
	if err != nil {
		return nil, 0, fmt.Errorf("--tls-mode: %w", err)
	}
	if mode == wire.TLSDisabled {
		if c.tlsCert != "" || c.tlsCA != "" {
			return nil, 0, errors.New("--tls-cert and --tls-ca need --tls-mode allowed or required")
		}
		return nil, mode, nil
	}
	if c.tlsCert == "" || c.tlsKey == "" {
		return nil, 0, fmt.Errorf("--tls-mode %s needs --tls-cert and --tls-key", modeName)
	}
	cert, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
	if err != nil {
		return nil, 0, fmt.Errorf("loading --tls-cert/--tls-key: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.tlsCA != "" {
		pem, err := os.ReadFile(c.tlsCA)
		if err != nil {
			return nil, 0, fmt.Errorf("--tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, 0, fmt.Errorf("--tls-ca: %s holds no PEM certificate", c.tlsCA)
		}
		// A client certificate is optional (SCRAM clients have none) but, when given, must
		// chain to the CA: an expired or foreign certificate fails the handshake.
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return cfg, mode, nil
}

// hostForClients is host:port as a client on this machine reaches it: a wildcard address is
// reached through loopback.
func hostForClients(addr *net.TCPAddr) string {
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, fmt.Sprint(addr.Port))
}

// mongoURI is the connection string for a data-plane address.
func mongoURI(addr *net.TCPAddr) string {
	return "mongodb://" + hostForClients(addr) + "/"
}
