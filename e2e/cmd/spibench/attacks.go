package main

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/klauspost/compress/zstd"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// attack is one pre-login attack of issue 15, run from this process while a logged-in client
// pings. start begins it and returns the function that stops it.
type attack struct {
	name  string
	start func(addr string) (stop func(), err error)
}

// attackBench measures a logged-in client's ping p50 and p99 at rest and under each pre-login
// attack, alternating them within each round, and prints the ratios. Each attack runs in a
// child process (this program with -attack) at nice 19, so that the ratio measures what the
// attack costs spid rather than the attacker's own competition with the client for the CPUs.
func attackBench(cfg config, spid *child) error {
	u, err := url.Parse(spid.URI)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	addr := u.Host
	attacks := preLoginAttacks()
	res := map[string][]result{}
	for range cfg.rounds {
		for i, a := range attacks {
			stop := func() {}
			if a.start != nil {
				if stop, err = startAttacker(self, i, addr); err != nil {
					return fmt.Errorf("%s: %w", a.name, err)
				}
			}
			r, err := measure(spid.URI, spid.cred, 1, cfg.duration)
			stop()
			if err != nil {
				return fmt.Errorf("ping under %s: %w", a.name, err)
			}
			res[a.name] = append(res[a.name], r)
		}
	}
	fmt.Printf("\nping of one logged-in Go-driver client under pre-login attacks, %d round(s) of %s each,\n", cfg.rounds, cfg.duration)
	fmt.Printf("attacks and rest alternating within each round; median round (by pings/s) reported; spid's default limits;\n")
	fmt.Printf("each attack runs in its own process at nice 19\n\n")
	fmt.Printf("%-44s  %10s  %9s  %9s  %9s  %9s\n", "attack", "pings/s", "p50", "p99", "p50 x", "p99 x")
	rest := median(res["at rest"])
	worst := 0.0
	for _, a := range attacks {
		r := median(res[a.name])
		p50x, p99x := float64(r.p50)/float64(rest.p50), float64(r.p99)/float64(rest.p99)
		worst = max(worst, p99x)
		fmt.Printf("%-44s  %10.0f  %9s  %9s  %8.2fx  %8.2fx\n", a.name, r.opsPerSec, r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), p50x, p99x)
	}
	fmt.Printf("worst p99 under attack / at rest: %.2fx   (goal: <= 5x)\n", worst)
	return nil
}

// startAttacker runs attack i against addr in a child process until the returned function
// stops it.
func startAttacker(self string, i int, addr string) (func(), error) {
	cmd := exec.Command("nice", "-n", "19", self, "-attack", strconv.Itoa(i), "-attack-addr", addr)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		ok := sc.Scan() && sc.Text() == "attacking"
		ready <- ok
		_, _ = io.Copy(io.Discard, out)
	}()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}
	select {
	case ok := <-ready:
		if !ok {
			stop()
			return nil, errors.New("the attacker did not start")
		}
	case <-time.After(30 * time.Second):
		stop()
		return nil, errors.New("the attacker did not start within 30s")
	}
	return stop, nil
}

// runAttacker is the child process: it starts attack i, says "attacking", and stops at SIGTERM.
func runAttacker(i int, addr string) error {
	attacks := preLoginAttacks()
	if i < 0 || i >= len(attacks) || attacks[i].start == nil {
		return fmt.Errorf("no attack %d", i)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	stop, err := attacks[i].start(addr)
	if err != nil {
		return err
	}
	fmt.Println("attacking")
	<-sig
	stop()
	return nil
}

func preLoginAttacks() []attack {
	hello := msgBytes(1, bson.D{{Key: "hello", Value: 1}, {Key: "compression", Value: bson.A{"zstd", "zlib", "snappy"}}, {Key: "$db", Value: "admin"}})
	ping := msgBody(bson.D{{Key: "ping", Value: 1}, {Key: "$db", Value: "admin"}})
	zeros := make([]byte, 40<<20)
	enc, _ := zstd.NewWriter(nil)
	zbomb := enc.EncodeAll(zeros, nil)
	var zl bytes.Buffer
	w := zlib.NewWriter(&zl)
	_, _ = w.Write(ping)
	_ = w.Close()
	return []attack{
		{name: "at rest"},
		{name: "500 idle connections", start: holding(500, nil)},
		{name: "500 connections with 10 of 16 header bytes", start: holding(500, header(60_000, 1, 2013)[:10])},
		{name: "50 frames trickled a byte at a time", start: trickling(50)},
		{name: "8 senders of 20 MiB pre-login messages", start: looping(8, func(c net.Conn) error {
			go func() { _, _ = c.Write(append(header(20<<20, 7, 2013), make([]byte, 1<<20)...)) }()
			return readOne(c)
		})},
		{name: "8 senders of compressed 48 MB liars", start: looping(8, func(c net.Conn) error {
			if err := send(c, hello); err != nil {
				return err
			}
			return send(c, append(header(int32(16+9+zl.Len()), 7, 2012), compressedHdr(2013, 47_999_000, 2, zl.Bytes())...))
		})},
		{name: "8 senders of zstd bombs (40 MB in 4 KB)", start: looping(8, func(c net.Conn) error {
			if err := send(c, hello); err != nil {
				return err
			}
			return send(c, append(header(int32(16+9+len(zbomb)), 7, 2012), compressedHdr(2013, 60_000, 3, zbomb)...))
		})},
		{name: "8 senders of failed logins from 127.0.0.2", start: loopingFrom("127.0.0.2", 8, func(c net.Conn) error {
			r, err := roundTripAny(c, 1, bson.D{{Key: "saslStart", Value: 1}, {Key: "mechanism", Value: "SCRAM-SHA-256"},
				{Key: "payload", Value: bson.Binary{Data: []byte("n,,n=admin,r=abcdefghijklmnop")}}, {Key: "$db", Value: "admin"}})
			if err != nil {
				return err
			}
			id, ok := r.Lookup("conversationId").Int32OK()
			if !ok {
				return nil // throttled
			}
			_, sf, _ := r.Lookup("payload").BinaryOK()
			nonce := strings.TrimPrefix(strings.Split(string(sf), ",")[0], "r=")
			_, err = roundTripAny(c, 2, bson.D{{Key: "saslContinue", Value: 1}, {Key: "conversationId", Value: id},
				{Key: "payload", Value: bson.Binary{Data: []byte("c=biws,r=" + nonce + ",p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")}}, {Key: "$db", Value: "admin"}})
			return err
		})},
	}
}

func header(length, requestID, op int32) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(length))
	b = binary.LittleEndian.AppendUint32(b, uint32(requestID))
	b = binary.LittleEndian.AppendUint32(b, 0)
	return binary.LittleEndian.AppendUint32(b, uint32(op))
}

func msgBody(cmd bson.D) []byte {
	doc, _ := bson.Marshal(cmd)
	return append([]byte{0, 0, 0, 0, 0}, doc...)
}

func msgBytes(requestID int32, cmd bson.D) []byte {
	body := msgBody(cmd)
	return append(header(int32(16+len(body)), requestID, opMsg), body...)
}

func compressedHdr(orig, size int32, id byte, payload []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(orig))
	b = binary.LittleEndian.AppendUint32(b, uint32(size))
	return append(append(b, id), payload...)
}

// send writes msg and reads one reply, whatever it says.
func send(c net.Conn, msg []byte) error {
	if _, err := c.Write(msg); err != nil {
		return err
	}
	return readOne(c)
}

func readOne(c net.Conn) error {
	var hdr [16]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return err
	}
	n := binary.LittleEndian.Uint32(hdr[:])
	if n < 16 || n > 48<<20 {
		return errors.New("bad reply length")
	}
	_, err := io.CopyN(io.Discard, c, int64(n-16))
	return err
}

// roundTripAny is roundTrip that returns error replies as documents too.
func roundTripAny(c net.Conn, requestID int32, cmd bson.D) (bson.Raw, error) {
	if _, err := c.Write(msgBytes(requestID, cmd)); err != nil {
		return nil, err
	}
	var hdr [16]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.LittleEndian.Uint32(hdr[:])
	if n < 21+5 || n > 48<<20 {
		return nil, errors.New("bad reply length")
	}
	rest := make([]byte, n-16)
	if _, err := io.ReadFull(c, rest); err != nil {
		return nil, err
	}
	return bson.Raw(rest[5:]), nil
}

// holding opens k connections, writes first on each, and holds them until stopped.
func holding(k int, first []byte) func(addr string) (func(), error) {
	return func(addr string) (func(), error) {
		conns := make([]net.Conn, 0, k)
		for range k {
			c, err := net.DialTimeout("tcp", addr, 10*time.Second)
			if err != nil {
				break
			}
			if first != nil {
				_, _ = c.Write(first)
			}
			conns = append(conns, c)
		}
		return func() {
			for _, c := range conns {
				_ = c.Close()
			}
		}, nil
	}
}

// trickling keeps k connections sending a 60 KB message one byte every 100 ms, reconnecting
// when spid closes one.
func trickling(k int) func(addr string) (func(), error) {
	return looping(k, func(c net.Conn) error {
		if _, err := c.Write(header(60_000, 1, opMsg)); err != nil {
			return err
		}
		for range 600 {
			if _, err := c.Write([]byte{0}); err != nil {
				return err
			}
			time.Sleep(100 * time.Millisecond)
		}
		return nil
	})
}

func looping(k int, f func(net.Conn) error) func(addr string) (func(), error) {
	return loopingFrom("", k, f)
}

// loopingFrom runs k goroutines that each connect (from src if set), run f and close, over and
// over until stopped.
func loopingFrom(src string, k int, f func(net.Conn) error) func(addr string) (func(), error) {
	return func(addr string) (func(), error) {
		var stop atomic.Bool
		var wg sync.WaitGroup
		var mu sync.Mutex
		open := map[net.Conn]bool{}
		d := net.Dialer{Timeout: 10 * time.Second}
		if src != "" {
			d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
		}
		for range k {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
					c, err := d.Dial("tcp", addr)
					if err != nil {
						time.Sleep(10 * time.Millisecond)
						continue
					}
					mu.Lock()
					open[c] = true
					mu.Unlock()
					_ = c.SetDeadline(time.Now().Add(15 * time.Second))
					_ = f(c)
					_ = c.Close()
					mu.Lock()
					delete(open, c)
					mu.Unlock()
				}
			}()
		}
		return func() {
			stop.Store(true)
			// Closing the connections ends an f that is waiting or trickling.
			mu.Lock()
			for c := range open {
				_ = c.Close()
			}
			mu.Unlock()
			wg.Wait()
		}, nil
	}
}
