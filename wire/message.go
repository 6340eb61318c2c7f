// Package wire frames the MongoDB wire protocol: it reads OP_MSG, the legacy OP_QUERY handshake
// and OP_COMPRESSED from a connection and writes OP_MSG and OP_REPLY answers. It knows nothing
// of commands: a Handler turns each request body into a reply body.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"

	"github.com/spi-streams/spi/bsoncheck"
)

// Opcodes spid reads or writes.
const (
	OpReply      int32 = 1
	OpUpdate     int32 = 2001
	OpInsert     int32 = 2002
	OpQuery      int32 = 2004
	OpGetMore    int32 = 2005
	OpDelete     int32 = 2006
	OpKillCursor int32 = 2007
	OpCompressed int32 = 2012
	OpMsg        int32 = 2013
)

// Limits advertised in hello and enforced on every message.
const (
	// MaxMessageSize is the largest message, header included, a client may send.
	MaxMessageSize = 48_000_000
	// MaxBSONObjectSize is the largest document a user may store.
	MaxBSONObjectSize = 16 * 1024 * 1024
	// maxCommandSize leaves room for command fields around a maximal user document, as mongod does.
	maxCommandSize = MaxBSONObjectSize + 16*1024
	// HeaderSize is the size of the standard message header.
	HeaderSize = 16
)

// OP_MSG flag bits.
const (
	FlagChecksumPresent uint32 = 1 << 0
	FlagMoreToCome      uint32 = 1 << 1
	FlagExhaustAllowed  uint32 = 1 << 16
	// flagsRequiredMask holds the bits a parser must understand; an unknown one is an error.
	flagsRequiredMask uint32 = 0xFFFF
)

// Header is the standard header that starts every message.
type Header struct {
	Length     int32
	RequestID  int32
	ResponseTo int32
	OpCode     int32
}

func parseHeader(b []byte) Header {
	return Header{
		Length:     int32(binary.LittleEndian.Uint32(b)),
		RequestID:  int32(binary.LittleEndian.Uint32(b[4:])),
		ResponseTo: int32(binary.LittleEndian.Uint32(b[8:])),
		OpCode:     int32(binary.LittleEndian.Uint32(b[12:])),
	}
}

// Sequence is an OP_MSG kind-1 section: a named run of documents.
type Sequence struct {
	Identifier string
	Documents  [][]byte
}

// Request is one decoded client message. Body and the sequences point into the connection's
// read buffer: they are valid only until the handler returns.
type Request struct {
	Header Header
	// OpCode is OpMsg or OpQuery, the opcode inside any OP_COMPRESSED wrapper.
	OpCode int32
	// Compressor is the compressor the request arrived with, or nil; the reply uses it too.
	Compressor *Compressor
	// Flags are the OP_MSG flag bits (zero for OP_QUERY).
	Flags uint32
	// Body is the command document: the OP_MSG kind-0 section or the OP_QUERY query.
	Body []byte
	// Sequences are the OP_MSG kind-1 sections in arrival order.
	Sequences []Sequence
	// Namespace is the OP_QUERY full collection name (empty for OP_MSG).
	Namespace string
}

// MoreToCome reports whether the client asked for no reply.
func (r *Request) MoreToCome() bool { return r.Flags&FlagMoreToCome != 0 }

// ErrorKind classifies a malformed message so the command layer can answer it with the right
// MongoDB error code; the wire layer itself knows no codes.
type ErrorKind int

// Kinds of malformed messages.
const (
	// KindProtocol is a framing error: bad lengths, bad sections, truncated fields.
	KindProtocol ErrorKind = iota + 1
	// KindInvalidBSON is a document that is not valid BSON.
	KindInvalidBSON
	// KindChecksum is an OP_MSG whose CRC-32C does not match its content.
	KindChecksum
	// KindIllegalFlag is an OP_MSG with a required flag bit spid does not know.
	KindIllegalFlag
	// KindTooManySequences is an OP_MSG with two sections of the same identifier.
	KindTooManySequences
	// KindTooLarge is a document over the BSON size limit.
	KindTooLarge
	// KindUnsupportedOpcode is an opcode spid does not serve (OP_INSERT, OP_GET_MORE, ...).
	KindUnsupportedOpcode
	// KindCompression is an OP_COMPRESSED that cannot be decompressed or was not negotiated.
	KindCompression
	// KindTooManyDocuments is an OP_MSG with more than MaxDocumentsPerMessage documents in
	// its document sequences.
	KindTooManyDocuments
	// KindResourceExhausted is a message refused because a server-wide budget
	// (Limits.MaxPendingBytes, Limits.MaxConnections) is spent.
	KindResourceExhausted
)

// MessageError describes a message that cannot be served. After one, the connection closes.
type MessageError struct {
	Kind ErrorKind
	// Header is the header of the offending message, when one was read.
	Header Header
	// HaveHeader says whether Header was read; without it no reply can be addressed.
	HaveHeader bool
	// OpCode is the opcode to answer with: OpQuery gets an OP_REPLY, anything else an OP_MSG.
	OpCode int32
	// MoreToCome is set when the client asked for no reply.
	MoreToCome bool
	// Oversized is set when the message was refused for its declared or uncompressed size.
	Oversized bool
	Msg       string
}

func (e *MessageError) Error() string { return e.Msg }

func msgErr(kind ErrorKind, h Header, format string, args ...any) *MessageError {
	return &MessageError{Kind: kind, Header: h, HaveHeader: true, OpCode: h.OpCode, Msg: fmt.Sprintf(format, args...)}
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ReadMessage reads one message from r. buf is scratch space that is reused when large enough;
// the returned buffer must be passed to the next call. negotiated says which compressors the
// client negotiated (nil: none, so OP_COMPRESSED is refused). A *MessageError describes a bad
// message; any other error is the transport's (io.EOF at a message boundary is a clean close).
// Messages may take MaxMessageSize bytes, compressed and uncompressed.
func ReadMessage(r io.Reader, buf []byte, negotiated *Compressors) (*Request, []byte, error) {
	return readMessage(r, buf, negotiated, &readLimits{maxMessage: MaxMessageSize})
}

// readLimits are the limits of one read, set by the connection loop from the server's Limits
// and the connection's state.
type readLimits struct {
	// maxMessage bounds the message, header included, and its uncompressed size.
	maxMessage int
	// maxDocs bounds the documents in its sequences (0: MaxDocumentsPerMessage).
	maxDocs int
	// grow reserves n more bytes of buffer (from the pending-bytes budget); false refuses.
	grow func(n int) bool
	// beforeRead runs before the header and before each ReceiveChunk of the body (it sets the
	// receive deadline that enforces the minimum rate).
	beforeRead func()
	// gate waits for a slot to decompress size bytes and returns its release.
	gate func(size int) func()
}

// maxDocuments is the bound on documents in a message's sequences.
func (l *readLimits) maxDocuments() int {
	if l.maxDocs > 0 {
		return l.maxDocs
	}
	return MaxDocumentsPerMessage
}

func (l *readLimits) reserve(n int) bool { return l.grow == nil || l.grow(n) }

func (l *readLimits) before() {
	if l.beforeRead != nil {
		l.beforeRead()
	}
}

// errBudget is the message of a refusal for lack of pending-bytes budget.
const errBudget = "the server is holding as many bytes of incoming messages as its budget allows (--max-pending-bytes); retry later"

func readMessage(r io.Reader, buf []byte, negotiated *Compressors, lim *readLimits) (*Request, []byte, error) {
	if cap(buf) < HeaderSize {
		buf = make([]byte, 4096)
	}
	buf = buf[:HeaderSize]
	lim.before()
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, buf, &MessageError{Kind: KindProtocol, Msg: "connection closed inside a message header"}
		}
		return nil, buf, err
	}
	h := parseHeader(buf)
	if h.Length < HeaderSize {
		return nil, buf, msgErr(KindProtocol, h, "message length %d is shorter than the %d-byte header", h.Length, HeaderSize)
	}
	if h.Length > MaxMessageSize {
		e := msgErr(KindProtocol, h, "message length %d exceeds the maximum of %d bytes", h.Length, MaxMessageSize)
		e.Oversized = true
		return nil, buf, e
	}
	if int(h.Length) > lim.maxMessage {
		e := msgErr(KindTooLarge, h, "message length %d exceeds the maximum of %d bytes before authentication; authenticate first", h.Length, lim.maxMessage)
		e.Oversized = true
		return nil, buf, e
	}
	n := int(h.Length)
	// Grow the buffer as bytes arrive rather than trusting the declared length up front, so a
	// client that announces 48 MB and sends little costs little memory.
	for len(buf) < n {
		if len(buf) == cap(buf) {
			nc := min(n, max(2*cap(buf), ReceiveChunk))
			if !lim.reserve(nc - cap(buf)) {
				return nil, buf, msgErr(KindResourceExhausted, h, "%s", errBudget)
			}
			nb := make([]byte, len(buf), nc)
			copy(nb, buf)
			buf = nb
		}
		end := min(cap(buf), n, len(buf)+ReceiveChunk)
		lim.before()
		if _, err := io.ReadFull(r, buf[len(buf):end]); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				return nil, buf, msgErr(KindProtocol, h, "connection closed inside a %d-byte message", n)
			}
			return nil, buf, err
		}
		buf = buf[:end]
	}
	req, err := decode(h, buf, negotiated, lim)
	return req, buf, err
}

// decode decodes a complete message (header included) whose header is h.
func decode(h Header, msg []byte, negotiated *Compressors, lim *readLimits) (*Request, error) {
	req := &Request{Header: h, OpCode: h.OpCode}
	body := msg[HeaderSize:]
	if h.OpCode == OpCompressed {
		inner, c, err := decompressMessage(h, body, negotiated, lim)
		if err != nil {
			return nil, err
		}
		req.Compressor = c
		req.OpCode = inner.OpCode
		body = inner.body
		if inner.OpCode == OpMsg && len(body) >= 4 && binary.LittleEndian.Uint32(body)&FlagChecksumPresent != 0 {
			// The checksum covers the uncompressed message with its original header.
			full := make([]byte, HeaderSize+len(body))
			binary.LittleEndian.PutUint32(full, uint32(HeaderSize+len(body)))
			binary.LittleEndian.PutUint32(full[4:], uint32(h.RequestID))
			binary.LittleEndian.PutUint32(full[8:], uint32(h.ResponseTo))
			binary.LittleEndian.PutUint32(full[12:], uint32(OpMsg))
			copy(full[HeaderSize:], body)
			msg = full
		} else {
			msg = nil
		}
	}
	switch req.OpCode {
	case OpMsg:
		return req, decodeMsg(req, body, msg, lim.maxDocuments())
	case OpQuery:
		return req, decodeQuery(req, body)
	default:
		e := msgErr(KindUnsupportedOpcode, h, "unsupported opcode %d", req.OpCode)
		e.OpCode = OpMsg
		return nil, e
	}
}

// decodeMsg decodes an OP_MSG body (everything after the header). whole is the complete
// uncompressed message, used for the checksum.
func decodeMsg(req *Request, body, whole []byte, maxDocs int) error {
	h := req.Header
	fail := func(kind ErrorKind, format string, args ...any) error {
		e := msgErr(kind, h, format, args...)
		e.OpCode = OpMsg
		e.MoreToCome = req.MoreToCome()
		return e
	}
	if len(body) < 4 {
		return fail(KindProtocol, "OP_MSG is too short to hold its flag bits")
	}
	req.Flags = binary.LittleEndian.Uint32(body)
	if unknown := req.Flags & flagsRequiredMask &^ (FlagChecksumPresent | FlagMoreToCome); unknown != 0 {
		return fail(KindIllegalFlag, "OP_MSG contains unknown required flag bits 0x%x", unknown)
	}
	sections := body[4:]
	if req.Flags&FlagChecksumPresent != 0 {
		if len(sections) < 4 {
			return fail(KindProtocol, "OP_MSG has the checksum flag but no room for a checksum")
		}
		sum := binary.LittleEndian.Uint32(sections[len(sections)-4:])
		if whole == nil || crc32.Checksum(whole[:len(whole)-4], castagnoli) != sum {
			return fail(KindChecksum, "OP_MSG checksum does not match contents")
		}
		sections = sections[:len(sections)-4]
	}
	docCount := 0
	for len(sections) > 0 {
		kind := sections[0]
		sections = sections[1:]
		switch kind {
		case 0:
			if req.Body != nil {
				return fail(KindProtocol, "OP_MSG contains more than one body section")
			}
			n, err := validateSectionDoc(sections)
			if err != nil {
				return fail(errKind(err), "OP_MSG body section: %v", err)
			}
			req.Body = sections[:n:n]
			sections = sections[n:]
		case 1:
			if len(sections) < 4 {
				return fail(KindProtocol, "OP_MSG document sequence is truncated")
			}
			size := int(int32(binary.LittleEndian.Uint32(sections)))
			if size < 5 || size > len(sections) {
				return fail(KindProtocol, "OP_MSG document sequence length %d is outside 5..%d", size, len(sections))
			}
			seq := sections[4:size]
			sections = sections[size:]
			idEnd := cstringEnd(seq)
			if idEnd < 0 {
				return fail(KindProtocol, "OP_MSG document sequence identifier is not null-terminated")
			}
			s := Sequence{Identifier: string(seq[:idEnd])}
			for _, prev := range req.Sequences {
				if prev.Identifier == s.Identifier {
					return fail(KindTooManySequences, "OP_MSG contains more than one document sequence named %q", Clip(s.Identifier))
				}
			}
			docs := seq[idEnd+1:]
			for len(docs) > 0 {
				if docCount++; docCount > maxDocs {
					return fail(KindTooManyDocuments, "OP_MSG document sequences hold more than %d documents; split the batch", maxDocs)
				}
				n, err := validateSectionDoc(docs)
				if err != nil {
					return fail(errKind(err), "OP_MSG document sequence %q: %v", Clip(s.Identifier), err)
				}
				s.Documents = append(s.Documents, docs[:n:n])
				docs = docs[n:]
			}
			req.Sequences = append(req.Sequences, s)
		default:
			return fail(KindProtocol, "OP_MSG contains unknown section kind %d", kind)
		}
	}
	if req.Body == nil {
		return fail(KindProtocol, "OP_MSG does not contain a body section")
	}
	return nil
}

type tooLargeError struct{ n int }

func (e tooLargeError) Error() string {
	return fmt.Sprintf("document of %d bytes exceeds the maximum of %d", e.n, maxCommandSize)
}

func errKind(err error) ErrorKind {
	var tl tooLargeError
	if errors.As(err, &tl) {
		return KindTooLarge
	}
	return KindInvalidBSON
}

// validateSectionDoc validates the BSON document at the start of b and returns its length.
func validateSectionDoc(b []byte) (int, error) {
	if len(b) < 4 {
		return 0, errors.New("document is truncated")
	}
	n := int(int32(binary.LittleEndian.Uint32(b)))
	if n > maxCommandSize {
		return 0, tooLargeError{n}
	}
	if n < 5 || n > len(b) {
		return 0, fmt.Errorf("document length %d is outside 5..%d", n, len(b))
	}
	if err := bsoncheck.Validate(b[:n]); err != nil {
		return 0, err
	}
	return n, nil
}

// decodeQuery decodes an OP_QUERY body. Only commands (namespace "<db>.$cmd") are served.
func decodeQuery(req *Request, body []byte) error {
	h := req.Header
	fail := func(kind ErrorKind, format string, args ...any) error {
		e := msgErr(kind, h, format, args...)
		e.OpCode = OpQuery
		return e
	}
	if len(body) < 4 {
		return fail(KindProtocol, "OP_QUERY is truncated")
	}
	rest := body[4:] // flags are ignored: none changes how a command runs
	nsEnd := cstringEnd(rest)
	if nsEnd < 0 {
		return fail(KindProtocol, "OP_QUERY collection name is not null-terminated")
	}
	req.Namespace = string(rest[:nsEnd])
	rest = rest[nsEnd+1:]
	if len(rest) < 8 {
		return fail(KindProtocol, "OP_QUERY is truncated before its query document")
	}
	rest = rest[8:] // numberToSkip, numberToReturn
	n, err := validateSectionDoc(rest)
	if err != nil {
		return fail(errKind(err), "OP_QUERY query: %v", err)
	}
	req.Body = rest[:n:n]
	if sel := rest[n:]; len(sel) > 0 {
		m, err := validateSectionDoc(sel)
		if err != nil {
			return fail(errKind(err), "OP_QUERY field selector: %v", err)
		}
		if m != len(sel) {
			return fail(KindProtocol, "OP_QUERY has %d bytes after its field selector", len(sel)-m)
		}
	}
	if !strings.HasSuffix(req.Namespace, ".$cmd") {
		return fail(KindUnsupportedOpcode, "OP_QUERY is only supported for commands, not on namespace %q", Clip(req.Namespace))
	}
	return nil
}

// Database returns the database an OP_QUERY command names through its namespace.
func (r *Request) Database() string {
	return strings.TrimSuffix(r.Namespace, ".$cmd")
}

// cstringEnd is the index of the NUL that ends the C string at the start of b, or -1.
func cstringEnd(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return -1
}
