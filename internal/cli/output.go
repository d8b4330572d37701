package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
)

// rowWriter prints a list as it is read, page by page: a table (a row is
// a line of tab-separated cells) or a JSON array (a row is a value).
type rowWriter interface {
	row(v any) error
	flush() error // at the end of a page
	end() error
}

// table prints an aligned table with a header. Cells are aligned within
// each page (tabwriter holds a page, not the whole list).
type table struct {
	w      io.Writer
	header string
	tw     *tabwriter.Writer
}

func (t *table) start() {
	if t.tw == nil {
		t.tw = tabwriter.NewWriter(t.w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(t.tw, t.header)
	}
}

func (t *table) row(v any) error {
	t.start()
	_, err := fmt.Fprintln(t.tw, v)
	return err
}

func (t *table) flush() error {
	t.start()
	return t.tw.Flush()
}

func (t *table) end() error { return t.flush() }

// jsonArray prints a JSON array one value at a time, as
// json.Encoder with SetIndent("", "  ") prints a whole slice.
type jsonArray struct {
	w io.Writer
	n int
}

func (j *jsonArray) row(v any) error {
	b, err := json.MarshalIndent(v, "  ", "  ")
	if err != nil {
		return err
	}
	sep := ",\n  "
	if j.n == 0 {
		sep = "[\n  "
	}
	j.n++
	_, err = fmt.Fprintf(j.w, "%s%s", sep, b)
	return err
}

func (j *jsonArray) flush() error { return nil }

func (j *jsonArray) end() error {
	var err error
	if j.n == 0 {
		_, err = io.WriteString(j.w, "[]\n")
	} else {
		_, err = io.WriteString(j.w, "\n]\n")
	}
	return err
}

// writeJSON prints v indented, as the list commands print their rows.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
