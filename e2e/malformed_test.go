package e2e

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Raw message builders. They build bytes by hand, independently of spid's wire package, so a
// bug there cannot hide in both places.

func le32(v int32) []byte { return binary.LittleEndian.AppendUint32(nil, uint32(v)) }

func header(length, requestID int32, op int32) []byte {
	b := le32(length)
	b = append(b, le32(requestID)...)
	b = append(b, le32(0)...)
	return append(b, le32(op)...)
}

// message prefixes body with a header whose length is correct.
func message(requestID, op int32, body []byte) []byte {
	return append(header(int32(16+len(body)), requestID, op), body...)
}

func doc(t *testing.T, d bson.D) []byte {
	t.Helper()
	b, err := bson.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func opMsg(flags uint32, sections ...[]byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, flags)
	for _, s := range sections {
		b = append(b, s...)
	}
	return b
}

func body0(d []byte) []byte { return append([]byte{0}, d...) }

func seq1(id string, docs ...[]byte) []byte {
	var payload []byte
	payload = append(payload, id...)
	payload = append(payload, 0)
	for _, d := range docs {
		payload = append(payload, d...)
	}
	return append(append([]byte{1}, le32(int32(4+len(payload)))...), payload...)
}

func opQuery(ns string, query []byte) []byte {
	b := le32(0)
	b = append(b, ns...)
	b = append(b, 0)
	b = append(b, le32(0)...)
	b = append(b, le32(-1)...)
	return append(b, query...)
}

func compressed(orig int32, size int32, id byte, payload []byte) []byte {
	b := le32(orig)
	b = append(b, le32(size)...)
	b = append(b, id)
	return append(b, payload...)
}

func zlibBytes(t *testing.T, p []byte) []byte {
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf)
	if _, err := w.Write(p); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// nested returns a document nested depth levels deep: {a: {a: {...}}}.
func nested(t *testing.T, depth int) []byte {
	d := bson.D{{Key: "x", Value: 1}}
	for range depth {
		d = bson.D{{Key: "a", Value: d}}
	}
	return doc(t, append(bson.D{{Key: "hello", Value: 1}, {Key: "$db", Value: "admin"}}, d[0]))
}

// reply reads one reply and returns its document and opcode.
func readReply(conn net.Conn) (bson.Raw, int32, error) {
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	hdr := make([]byte, 16)
	if _, err := io.ReadFull(conn, hdr); err != nil {
		return nil, 0, err
	}
	n := int32(binary.LittleEndian.Uint32(hdr))
	op := int32(binary.LittleEndian.Uint32(hdr[12:]))
	if n < 16 || n > 48_000_000 {
		return nil, op, errors.New("bad reply length")
	}
	body := make([]byte, n-16)
	if _, err := io.ReadFull(conn, body); err != nil {
		return nil, op, err
	}
	switch op {
	case 2013:
		return bson.Raw(body[5:]), op, nil
	case 1:
		return bson.Raw(body[20:]), op, nil
	}
	return nil, op, errors.New("unexpected reply opcode")
}

// closedByServer reports whether the server closed the connection (EOF or reset) rather than
// leaving it open.
func closedByServer(conn net.Conn) bool {
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	var b [1]byte
	_, err := conn.Read(b[:])
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return err != nil
}

// Malformed frames each get the documented answer, and a second connection keeps working
// throughout.
func TestMalformedFrames(t *testing.T) {
	// Framing is checked the same for every connection; the pre-authentication message limit,
	// which would answer the large cases first, is TestPreAuthLimits' subject.
	s := startSpid(t, "--preauth-max-message", "48000000", "--preauth-pending-bytes", "1GiB")
	witness := connectGo(t, s.Admin(t, "", ""))

	// hello needs no authentication, so these raw connections can use it.
	ping := doc(t, bson.D{{Key: "hello", Value: 1}, {Key: "$db", Value: "admin"}})
	goodMsg := message(1, 2013, opMsg(0, body0(ping)))
	withChecksum := func(msg []byte, corrupt bool) []byte {
		binary.LittleEndian.PutUint32(msg[0:], uint32(len(msg)+4))
		binary.LittleEndian.PutUint32(msg[16:], 1) // checksumPresent
		sum := crc32.Checksum(msg, crc32.MakeTable(crc32.Castagnoli))
		if corrupt {
			sum ^= 0xdeadbeef
		}
		return binary.LittleEndian.AppendUint32(msg, sum)
	}
	truncatedDoc := append(le32(100), 0x10, 'a', 0, 1, 0, 0, 0, 0)
	badType := []byte{12, 0, 0, 0, 0x55, 'a', 0, 1, 0, 0, 0, 0}
	badNested := doc(t, bson.D{{Key: "hello", Value: 1}, {Key: "$db", Value: "admin"}, {Key: "x", Value: bson.D{{Key: "y", Value: "z"}}}})
	badNested[len(badNested)-15] = 0xEE // the embedded document's length now runs past its parent
	huge := make([]byte, 17*1024*1024)
	binary.LittleEndian.PutUint32(huge, uint32(len(huge)))
	hello := doc(t, bson.D{{Key: "hello", Value: 1}, {Key: "compression", Value: bson.A{"zlib"}}, {Key: "$db", Value: "admin"}})
	pingMsgBody := opMsg(0, body0(ping))

	cases := []struct {
		name string
		// negotiate sends hello with compression: ["zlib"] first.
		negotiate bool
		send      []byte
		// halfClose closes the client's write side after sending.
		halfClose bool
		// wantCode is the error code of the reply; 0 means no reply is expected.
		wantCode int32
		// wantOpen says the connection stays usable (a command error, not a framing error).
		wantOpen bool
	}{
		{name: "short header", send: []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, halfClose: true},
		{name: "negative length", send: header(-1, 7, 2013), wantCode: 17},
		{name: "zero length", send: header(0, 7, 2013), wantCode: 17},
		{name: "length shorter than header", send: header(15, 7, 2013), wantCode: 17},
		{name: "length past 48 MB", send: header(48_000_001, 7, 2013), wantCode: 17},
		{name: "body shorter than length", send: append(header(1000, 7, 2013), 0, 0, 0, 0), halfClose: true, wantCode: 17},
		{name: "unknown opcode", send: message(7, 9999, []byte{0, 0, 0, 0}), wantCode: 17},
		{name: "legacy OP_INSERT", send: message(7, 2002, opMsg(0, []byte("db.c\x00"), ping)), wantCode: 17},
		{name: "bad section kind", send: message(7, 2013, opMsg(0, body0(ping), []byte{2, 5, 0, 0, 0, 0})), wantCode: 17},
		{name: "no body section", send: message(7, 2013, opMsg(0)), wantCode: 17},
		{name: "two body sections", send: message(7, 2013, opMsg(0, body0(ping), body0(ping))), wantCode: 17},
		{name: "sequence length past end", send: message(7, 2013, opMsg(0, body0(ping), append([]byte{1}, le32(999)...))), wantCode: 17},
		{name: "duplicate sequence", send: message(7, 2013, opMsg(0, body0(ping), seq1("documents", ping), seq1("documents", ping))), wantCode: 233},
		{name: "truncated BSON", send: message(7, 2013, opMsg(0, body0(truncatedDoc))), wantCode: 22},
		{name: "unknown BSON type", send: message(7, 2013, opMsg(0, body0(badType))), wantCode: 22},
		{name: "corrupt embedded document", send: message(7, 2013, opMsg(0, body0(badNested))), wantCode: 22},
		{name: "BSON nested too deep", send: message(7, 2013, opMsg(0, body0(nested(t, 205)))), wantCode: 22},
		{name: "document over 16 MB", send: message(7, 2013, opMsg(0, body0(huge))), wantCode: 10334},
		{name: "bad checksum", send: withChecksum(message(7, 2013, opMsg(0, body0(ping))), true), wantCode: 288},
		{name: "unknown required flag", send: message(7, 2013, opMsg(1<<3, body0(ping))), wantCode: 223},
		{name: "malformed with moreToCome", send: message(7, 2013, opMsg(2, body0(truncatedDoc)))},
		{name: "compressed before negotiation", send: message(7, 2012, compressed(2013, int32(len(pingMsgBody)), 2, zlibBytes(t, pingMsgBody))), wantCode: 17},
		{name: "compressed size lies (smaller)", negotiate: true, send: message(7, 2012, compressed(2013, int32(len(pingMsgBody)-3), 2, zlibBytes(t, pingMsgBody))), wantCode: 17},
		{name: "compressed size lies (larger)", negotiate: true, send: message(7, 2012, compressed(2013, int32(len(pingMsgBody)+100), 2, zlibBytes(t, pingMsgBody))), wantCode: 17},
		{name: "compressed size negative", negotiate: true, send: message(7, 2012, compressed(2013, -5, 2, zlibBytes(t, pingMsgBody))), wantCode: 17},
		{name: "compressed garbage", negotiate: true, send: message(7, 2012, compressed(2013, 20, 2, []byte("not zlib at all"))), wantCode: 17},
		{name: "unknown compressor", negotiate: true, send: message(7, 2012, compressed(2013, int32(len(pingMsgBody)), 9, pingMsgBody)), wantCode: 17},
		{name: "compressor not negotiated", negotiate: true, send: message(7, 2012, compressed(2013, int32(len(pingMsgBody)), 3, pingMsgBody)), wantCode: 17},
		{name: "compressed wraps compressed", negotiate: true, send: message(7, 2012, compressed(2012, 9, 2, zlibBytes(t, compressed(2013, 0, 0, nil)))), wantCode: 17},
		{name: "OP_QUERY on a collection", send: message(7, 2004, opQuery("test.coll", ping)), wantCode: 352},
		// Well-formed messages carrying bad commands get a command error and the connection stays.
		{name: "OP_QUERY for a non-handshake command", send: message(7, 2004, opQuery("admin.$cmd", doc(t, bson.D{{Key: "ping", Value: 1}}))), wantCode: 352, wantOpen: true},
		{name: "OP_MSG without $db", send: message(7, 2013, opMsg(0, body0(doc(t, bson.D{{Key: "ping", Value: 1}})))), wantCode: 40571, wantOpen: true},
		{name: "empty command document", send: message(7, 2013, opMsg(0, body0(doc(t, bson.D{})))), wantCode: 59, wantOpen: true},
		{name: "legacy handshake wrapped in $query", send: message(7, 2004, opQuery("admin.$cmd", doc(t, bson.D{{Key: "$query", Value: bson.D{{Key: "isMaster", Value: 1}}}}))), wantOpen: true},
		{name: "valid checksum", send: withChecksum(message(7, 2013, opMsg(0, body0(ping))), false), wantOpen: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", s.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = conn.Close() }()
			if c.negotiate {
				if _, err := conn.Write(message(1, 2013, opMsg(0, body0(hello)))); err != nil {
					t.Fatal(err)
				}
				r, _, err := readReply(conn)
				if err != nil {
					t.Fatalf("hello: %v", err)
				}
				if v, err := r.LookupErr("compression"); err != nil || !strings.Contains(v.String(), "zlib") {
					t.Fatalf("zlib not negotiated: %v", r)
				}
			}
			if _, err := conn.Write(c.send); err != nil {
				t.Fatalf("write: %v", err)
			}
			if c.halfClose {
				_ = conn.(*net.TCPConn).CloseWrite()
			}
			if c.wantCode != 0 {
				r, op, err := readReply(conn)
				if err != nil {
					t.Fatalf("want an error reply with code %d, got %v", c.wantCode, err)
				}
				legacy := bytes.Equal(c.send[12:16], le32(2004))
				if (legacy && op != 1) || (!legacy && op != 2013) {
					t.Errorf("reply opcode %d", op)
				}
				code, _ := r.Lookup("code").AsInt64OK()
				ok := r.Lookup("ok")
				if int32(code) != c.wantCode || ok.Type != bson.TypeDouble || ok.Double() != 0 {
					t.Errorf("reply %v; want ok: 0.0, code %d", r, c.wantCode)
				}
				errmsg, _ := r.Lookup("errmsg").StringValueOK()
				codeName, _ := r.Lookup("codeName").StringValueOK()
				if errmsg == "" || codeName == "" {
					t.Errorf("reply lacks errmsg or codeName: %v", r)
				}
			}
			if c.wantOpen {
				if c.wantCode == 0 {
					if r, _, err := readReply(conn); err != nil || r.Lookup("ok").Double() != 1 {
						t.Fatalf("want ok: 1, got %v %v", r, err)
					}
				}
				if _, err := conn.Write(goodMsg); err != nil {
					t.Fatal(err)
				}
				if r, _, err := readReply(conn); err != nil || r.Lookup("ok").Double() != 1 {
					t.Errorf("connection unusable after a command error: %v %v", r, err)
				}
			} else if !closedByServer(conn) {
				t.Errorf("server left the connection open")
			}
			if err := witness.Ping(t.Context(), nil); err != nil {
				t.Fatalf("the other connection stopped working: %v", err)
			}
		})
	}
	if len(cases) < 15 {
		t.Fatalf("only %d cases", len(cases))
	}
}
