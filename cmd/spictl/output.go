package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spi-streams/spi/admin/client"
)

// printJSON prints a reply indented.
func printJSON(w io.Writer, reply []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, reply, "", "  "); err != nil {
		return fmt.Errorf("the reply is not JSON: %w", err)
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// cell keeps one value on one line of its column; empty is shown as "-".
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return strings.NewReplacer("\t", " ", "\n", " ", "\r", " ").Replace(s)
}

// table prints rows under a header in aligned columns.
func table(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		for i := range r {
			r[i] = cell(r[i])
		}
		_, _ = fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// fields prints "Key:  value" lines; kv alternates keys and values, and empty values are
// left out.
func fields(w io.Writer, kv ...string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			_, _ = fmt.Fprintf(tw, "%s:\t%s\n", kv[i], cell(kv[i+1]))
		}
	}
	return tw.Flush()
}

func decode[T any](reply []byte) (T, error) {
	var v T
	if err := json.Unmarshal(reply, &v); err != nil {
		return v, fmt.Errorf("unexpected reply: %w", err)
	}
	return v, nil
}

// showAs decodes a reply as a T and prints it with show.
func showAs[T any](show func(io.Writer, T) error) func(io.Writer, []byte) error {
	return func(w io.Writer, reply []byte) error {
		v, err := decode[T](reply)
		if err != nil {
			return err
		}
		return show(w, v)
	}
}

// pageOf prints a paginated reply as a table, saying when there is more.
func pageOf[T any](plural string, header []string, row func(T) []string) func(io.Writer, []byte) error {
	return func(w io.Writer, reply []byte) error {
		page, err := decode[client.Page[T]](reply)
		if err != nil {
			return err
		}
		if err := rowsOf(w, plural, header, page.Results, row); err != nil {
			return err
		}
		if page.TotalCount > len(page.Results) {
			_, err = fmt.Fprintf(w, "%d of %d %s shown; see --page and --limit.\n", len(page.Results), page.TotalCount, plural)
		}
		return err
	}
}

func rowsOf[T any](w io.Writer, plural string, header []string, items []T, row func(T) []string) error {
	if len(items) == 0 {
		_, err := fmt.Fprintf(w, "No %s.\n", plural)
		return err
	}
	rows := make([][]string, len(items))
	for i, it := range items {
		rows[i] = row(it)
	}
	return table(w, header, rows)
}
