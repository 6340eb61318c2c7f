package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spi-streams/spi/admin/client"
)

// procFlags are the flags of processors.
type procFlags struct {
	pipeline, dlq   string
	noDLQ, noResume bool
}

var processors = &resource{
	name: "processors", aliases: []string{"proc", "processor"}, noun: "processor", paged: true,
	verbs:     []string{"list", "get", "create", "start", "stop", "modify", "update", "delete"},
	verbAlias: map[string]string{"modify": "update"},
	flags: func(fs *flagSet, o *options) {
		fs.StringVar(&o.workspace, "workspace", "default", "")
		fs.StringVar(&o.name, "name", "", "")
		fs.StringVar(&o.proc.pipeline, "pipeline", "", "")
		fs.StringVar(&o.proc.dlq, "dlq", "", "")
		fs.StringVar(&o.tier, "tier", "", "")
		fs.BoolVar(&o.proc.noDLQ, "no-dlq", false, "")
		fs.BoolVar(&o.proc.noResume, "no-resume", false, "")
		fs.onlyFor("create modify update", "file", "name", "pipeline", "dlq")
		fs.onlyFor("create modify update start", "tier")
		fs.onlyFor("modify update", "no-dlq")
		fs.onlyFor("modify update start", "no-resume")
	},
	collection: func(o *options) string { return "/streams/" + esc(o.workspace) + "/processors" },
	createPath: func(o *options) string { return "/streams/" + esc(o.workspace) + "/processor" },
	item: oneArg("processor name", func(o *options, name string) string {
		return "/streams/" + esc(o.workspace) + "/processor/" + esc(name)
	}),
	readFile: readPipelineFile,
	apply:    applyProcessor,
	actions: map[string]action{
		"start": {past: "Started", request: func(o *options) (string, any, error) {
			if !o.proc.noResume && o.tier == "" {
				return ":start", nil, nil
			}
			body := map[string]any{}
			if o.proc.noResume {
				body["resumeFromCheckpoint"] = false
			}
			set(body, strings.ToUpper(o.tier), "tier")
			return ":startWith", body, nil
		}},
		"stop": {past: "Stopped", request: func(*options) (string, any, error) { return ":stop", nil, nil }},
	},
	list: pageOf("processors", []string{"NAME", "STATE", "TIER", "INPUT", "OUTPUT", "DLQ"}, func(p client.Processor) []string {
		var in, out, dlq string
		if s := p.Stats; s != nil {
			in, out, dlq = strconv.FormatInt(s.InputMessageCount, 10), strconv.FormatInt(s.OutputMessageCount, 10), strconv.FormatInt(s.DLQMessageCount, 10)
		}
		return []string{p.Name, p.State, p.Tier, in, out, dlq}
	}),
	show: showAs(showProcessor),
}

// readPipelineFile reads --file: a JSON array is the pipeline, an object a whole
// StreamsProcessor (or StreamsModifyStreamProcessor) body. The pipeline is sent exactly as
// written: stage fields keep their order ($sort, $project) and Extended JSON its types.
func readPipelineFile(data []byte, body map[string]any) error {
	t := bytes.TrimSpace(data)
	if len(t) > 0 && t[0] == '[' {
		p, err := pipelineArg(t)
		if err != nil {
			return err
		}
		body["pipeline"] = p
		return nil
	}
	var top map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(t))
	if err := dec.Decode(&top); err != nil {
		return fmt.Errorf("want a JSON array of stages or a processor object: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("want one JSON value, found more after it")
	}
	for k, v := range top {
		if k == "options" {
			// Options are merged with --dlq and --no-resume: decode them (their order does not matter).
			var opts map[string]any
			d := json.NewDecoder(bytes.NewReader(v))
			d.UseNumber()
			if err := d.Decode(&opts); err != nil {
				return fmt.Errorf("options: %w", err)
			}
			body[k] = opts
			continue
		}
		body[k] = v
	}
	return nil
}

// pipelineArg checks a pipeline given as JSON: an array, kept as written.
func pipelineArg(p []byte) (json.RawMessage, error) {
	p = bytes.TrimSpace(p)
	if !json.Valid(p) {
		return nil, fmt.Errorf("the pipeline is not valid JSON")
	}
	if len(p) == 0 || p[0] != '[' {
		return nil, fmt.Errorf("the pipeline must be a JSON array of stages, like '[{\"$source\": {...}}, ...]'")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, p); err != nil {
		return nil, err
	}
	return json.RawMessage(buf.Bytes()), nil
}

func applyProcessor(o *options, b map[string]any, verb string) error {
	if o.workspace == "" {
		return usagef("--workspace is empty")
	}
	set(b, o.name, "name")
	if o.proc.pipeline != "" {
		p, err := pipelineArg([]byte(o.proc.pipeline))
		if err != nil {
			return usagef("--pipeline: %v", err)
		}
		b["pipeline"] = p
	}
	set(b, strings.ToUpper(o.tier), "tier")
	if o.proc.dlq != "" {
		if o.proc.noDLQ {
			return usagef("give --dlq or --no-dlq, not both")
		}
		parts := strings.SplitN(o.proc.dlq, ".", 3)
		if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
			return usagef("--dlq %q: want CONNECTION.DB.COLLECTION, e.g. --dlq cluster0.errors.dlq", o.proc.dlq)
		}
		set(b, map[string]any{"connectionName": parts[0], "db": parts[1], "coll": parts[2]}, "options", "dlq")
	}
	if o.proc.noDLQ {
		set(b, map[string]any{}, "options", "dlq")
	}
	if o.proc.noResume {
		set(b, false, "options", "resumeFromCheckpoint")
	}
	if verb == "create" {
		if !has(b, "name") {
			return usagef("processors create needs --name")
		}
		if !has(b, "pipeline") {
			return usagef("processors create needs a pipeline: --pipeline JSON or --file PATH")
		}
	}
	return nil
}

func showProcessor(w io.Writer, p client.Processor) error {
	var dlq, in, out, dead, state, watermark, failure string
	if p.Options != nil && p.Options.DLQ != nil {
		d := p.Options.DLQ
		dlq = d.ConnectionName + "." + d.DB + "." + d.Coll
	}
	if s := p.Stats; s != nil {
		in = fmt.Sprintf("%d messages, %d bytes", s.InputMessageCount, s.InputMessageSize)
		out = fmt.Sprintf("%d messages, %d bytes", s.OutputMessageCount, s.OutputMessageSize)
		dead = fmt.Sprintf("%d messages, %d bytes", s.DLQMessageCount, s.DLQMessageSize)
		state = strconv.FormatInt(s.StateSize, 10) + " bytes"
		watermark = s.Watermark
	}
	if p.ErrorMsg != "" {
		failure = p.ErrorMsg
		if p.ErrorCode != 0 {
			failure += " (code " + strconv.Itoa(int(p.ErrorCode)) + ")"
		}
	}
	var pipe bytes.Buffer
	_ = json.Compact(&pipe, p.Pipeline)
	return fields(w,
		"Name", p.Name,
		"ID", p.ID,
		"State", p.State,
		"Error", failure,
		"Tier", p.Tier,
		"DLQ", dlq,
		"Input", in,
		"Output", out,
		"Dead letters", dead,
		"State size", state,
		"Watermark", watermark,
		"Pipeline", pipe.String())
}
