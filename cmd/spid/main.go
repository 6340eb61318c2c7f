// Command spid is the spi server: a self-hosted stream processing workspace that speaks the
// MongoDB wire protocol the way an Atlas Stream Processing workspace does.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spi-streams/spi/commands"
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
	logLevel        string
	logFormat       string
	shutdownTimeout time.Duration
}

// parseConfig reads flags, falling back to SPI_* environment variables, then to defaults that
// run with nothing installed.
func parseConfig(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("spid", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.listen, "listen", env("SPI_LISTEN", "127.0.0.1:27017"), "data-plane address (host:port) mongosh and drivers connect to [SPI_LISTEN]")
	fs.StringVar(&c.logLevel, "log-level", env("SPI_LOG_LEVEL", "info"), "log level: debug, info, warn or error [SPI_LOG_LEVEL]")
	fs.StringVar(&c.logFormat, "log-format", env("SPI_LOG_FORMAT", "text"), "log format: text or json [SPI_LOG_FORMAT]")
	timeout, err := time.ParseDuration(env("SPI_SHUTDOWN_TIMEOUT", "30s"))
	if err != nil {
		return c, fmt.Errorf("SPI_SHUTDOWN_TIMEOUT: %w", err)
	}
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", timeout, "how long running commands may take to finish at shutdown [SPI_SHUTDOWN_TIMEOUT]")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *showVersion {
		return c, errVersion
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

	l, err := net.Listen("tcp", c.listen)
	if err != nil {
		return fmt.Errorf("data plane: %w", err)
	}
	srv := wire.NewServer(commands.New(commands.Options{Version: version, Logger: log}), log)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()

	addr := l.Addr().(*net.TCPAddr)
	log.Info("data plane listening", "addr", addr.String(), "version", version)
	_, _ = fmt.Fprintf(stdout, "spid %s is ready. Connect with:\n  mongosh %q\n", version, mongoURI(addr))

	select {
	case <-ctx.Done():
	case err := <-served:
		return fmt.Errorf("data plane: %w", err)
	}
	// A second signal during the grace period gets Go's default behaviour: exit at once.
	stop()
	log.Info("shutting down; letting running commands finish", "timeout", c.shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), c.shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown grace period ended; closed the remaining connections", "err", err)
	}
	if err := <-served; !errors.Is(err, wire.ErrServerClosed) {
		log.Warn("data plane stopped with an error", "err", err)
	}
	log.Info("stopped")
	return nil
}

// mongoURI is the connection string for the address spid listens on. A wildcard address is
// reached through loopback.
func mongoURI(addr *net.TCPAddr) string {
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return fmt.Sprintf("mongodb://%s:%d/", host, addr.Port)
}
