package commands

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/audit"
	"github.com/spi-streams/spi/metrics"
	"github.com/spi-streams/spi/pipeline/value"
	"github.com/spi-streams/spi/processor"
	"github.com/spi-streams/spi/store"
	"github.com/spi-streams/spi/wire"
)

// Options configures a Dispatcher.
type Options struct {
	// Version is spid's own version, reported by buildInfo.
	Version string
	// Logger receives operational logs; nil discards them.
	Logger *slog.Logger
	// Store holds users, roles and the connection registry.
	Store *store.Store
	// Audit receives authentication, authorization and processor events; nil records nothing.
	Audit *audit.Log
	// Processors is the processor runtime; without it the stream processor commands answer
	// CommandNotFound.
	Processors *processor.Manager
	// Metrics receives command and connection counts; nil records nothing.
	Metrics *metrics.Metrics
	// LoginFailuresFree is how many authentication failures an address or a user may have
	// (decaying by half every minute) before the login throttle slows it; 0 means 30.
	LoginFailuresFree int
}

// Dispatcher serves wire requests from the command table. It implements wire.Handler.
type Dispatcher struct {
	opts    Options
	log     *slog.Logger
	started time.Time
	byName  map[string]*Command
	// throttle slows repeated authentication failures (throttle.go).
	throttle throttle
}

// New returns a dispatcher over the command table.
func New(opts Options) *Dispatcher {
	d := &Dispatcher{opts: opts, log: opts.Logger, started: time.Now(), byName: map[string]*Command{}}
	d.throttle.free = opts.LoginFailuresFree
	if d.throttle.free <= 0 {
		d.throttle.free = throttleFree
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	for i := range table {
		d.byName[table[i].Name] = &table[i]
	}
	return d
}

var _ wire.Handler = (*Dispatcher)(nil)

// Handle runs one command and appends its reply document to dst.
func (d *Dispatcher) Handle(ctx context.Context, c *wire.Conn, req *wire.Request, dst []byte) []byte {
	call, cmd, err := d.parse(c, req)
	if err == nil {
		if e := d.check(call, cmd); e != nil {
			err = e
		} else if e := d.authorize(call, cmd); e != nil {
			err = e
		}
	}
	if err == nil {
		r := startReply(dst)
		err = d.run(ctx, cmd, call, r)
		if err == nil {
			r.Double("ok", 1)
			d.record(call, cmd, nil)
			return r.end()
		}
	}
	e, ok := err.(*Error)
	if !ok {
		d.log.Error("command failed with an internal error", "command", wire.Clip(call.Name), "err", err)
		e = Errorf(CodeInternalError, "internal error running %s", call.Name)
	}
	d.record(call, cmd, e)
	return appendError(dst, e)
}

// record counts a command in the metrics and audits the processor commands (spec §6.4): user,
// workspace, processor, outcome. Command names outside the table count as "unknown", so a
// client cannot create series at will.
func (d *Dispatcher) record(call *Call, cmd *Command, e *Error) {
	outcome := "ok"
	if e != nil {
		outcome = e.Name
		if outcome == "" {
			outcome = e.Code.Name()
		}
	}
	name := "unknown"
	if cmd != nil {
		name = cmd.Name
	}
	d.opts.Metrics.Command(workspaceOf(call.Conn), name, outcome)
	if cmd == nil || !cmd.Processor {
		return
	}
	rec := auditRecord{Event: "processorCommand", Command: call.Name, Outcome: outcome}
	if s := sessionOf(call.Conn); s.user != nil {
		rec.User, rec.DB = s.user.name, s.user.db
	}
	if n, ok := call.Arg.StringValueOK(); ok {
		rec.Processor = n
	}
	if e != nil {
		rec.Reason = e.Msg
	}
	d.audit(call, rec)
}

// ConnOpened implements wire.ConnObserver.
func (d *Dispatcher) ConnOpened(c *wire.Conn) { d.opts.Metrics.ConnectionOpened(workspaceOf(c)) }

// ConnClosed implements wire.ConnObserver: the connection's sample cursors and sp.process()
// processors are freed (mongosh closes its connections on Ctrl-C during sample()).
func (d *Dispatcher) ConnClosed(c *wire.Conn) {
	d.opts.Metrics.ConnectionClosed(workspaceOf(c))
	if d.opts.Processors != nil {
		d.opts.Processors.ReleaseOwner(c.ID())
	}
}

// check applies what holds for every command before authorization: the generic arguments are
// valid (and leave the Body), an admin-only command runs on admin, and apiStrict admits it.
func (d *Dispatcher) check(call *Call, cmd *Command) *Error {
	s := sessionOf(call.Conn)
	stripped, e := stripGeneric(s.body[:0], call.Body, &call.Generic)
	s.body = stripped
	if e != nil {
		return e
	}
	call.Body = stripped
	if cmd.AdminOnly && call.DB != "admin" {
		return Errorf(CodeUnauthorized, "%s may only be run against the admin database.", call.Name)
	}
	return checkAPI(cmd.Name, &call.Generic)
}

// run calls the handler, turning a panic into an InternalError reply so one bad request cannot
// take the server down.
func (d *Dispatcher) run(ctx context.Context, cmd *Command, call *Call, r *Reply) (err error) {
	defer func() {
		if p := recover(); p != nil {
			d.log.Error("command panicked", "command", wire.Clip(call.Name), "panic", fmt.Sprint(p))
			err = Errorf(CodeInternalError, "internal error running %s", call.Name)
		}
	}()
	return cmd.Handler(ctx, call, r)
}

// parse finds the command and its database.
func (d *Dispatcher) parse(c *wire.Conn, req *wire.Request) (*Call, *Command, error) {
	call := &Call{Conn: c, Req: req, Body: req.Body, Server: d}
	if req.OpCode == wire.OpQuery {
		call.DB = req.Database()
		// Legacy OP_QUERY may wrap the command as {$query: {...}, $readPreference: ...}.
		if v, err := call.Body.IndexErr(0); err == nil {
			if k := v.Key(); (k == "$query" || k == "query") && v.Value().Type == bson.TypeEmbeddedDocument {
				call.Body = v.Value().Document()
			}
		}
	}
	first, err := call.Body.IndexErr(0)
	if err != nil {
		return call, nil, Errorf(CodeCommandNotFound, "no such command: ''")
	}
	call.Name = first.Key()
	call.Arg = first.Value()
	cmd := d.byName[call.Name]
	if req.OpCode == wire.OpQuery {
		if cmd == nil || !cmd.Handshake {
			return call, nil, Errorf(CodeUnsupportedOpQueryCommand,
				"Unsupported OP_QUERY command: %s. The client driver may require an upgrade. "+
					"For more details see https://dochub.mongodb.org/core/legacy-opcode-removal", wire.Clip(call.Name))
		}
		return call, cmd, nil
	}
	dbv, err := call.Body.LookupErr("$db")
	if err != nil {
		return call, nil, Errorf(CodeMissingDatabase, "OP_MSG requests require a $db argument")
	}
	db, ok := dbv.StringValueOK()
	if !ok {
		return call, nil, Errorf(CodeTypeMismatch, "$db must be a string, not %s", typeName(dbv.Type))
	}
	call.DB = db
	if cmd == nil {
		return call, nil, Errorf(CodeCommandNotFound, "no such command: '%s'", wire.Clip(call.Name))
	}
	return call, cmd, nil
}

// HandleMessageError answers a malformed message; the connection closes after it.
func (d *Dispatcher) HandleMessageError(_ *wire.Conn, me *wire.MessageError, dst []byte) []byte {
	code := CodeProtocolError
	switch me.Kind {
	case wire.KindInvalidBSON:
		code = CodeInvalidBSON
	case wire.KindChecksum:
		code = CodeChecksumMismatch
	case wire.KindIllegalFlag:
		code = CodeIllegalOpMsgFlag
	case wire.KindTooManySequences:
		code = CodeTooManyDocumentSequences
	case wire.KindTooLarge:
		code = CodeBSONObjectTooLarge
	case wire.KindTooManyDocuments:
		code = CodeInvalidLength
	case wire.KindResourceExhausted:
		code = CodeExceededMemoryLimit
	case wire.KindUnsupportedOpcode:
		if me.OpCode == wire.OpQuery {
			code = CodeUnsupportedOpQueryCommand
		}
	}
	return appendError(dst, &Error{Code: code, Msg: me.Msg})
}

// typeName is the MongoDB name of a BSON type, as used in error messages.
func typeName(t bson.Type) string { return value.TypeName(bson.RawValue{Type: t}) }
