package config

import (
	"sort"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// positions maps the keys of a TOML document to their lines. Paths join key parts with '.', and number
// the entries of arrays (of tables or of values) from 0: "inbox.1.address", "agent.0.roles.x@y",
// "outbound.retry.2". Plain paths leave the numbers out ("inbox.address"): they name a key for people.
type positions struct {
	lineStarts []int                    // byte offset of the start of each line
	lines      map[string]int           // numbered path -> line
	keyAt      map[[2]int]string        // (line, column) where a key starts -> plain path
	valueAt    map[[2]int]string        // (line, column) where a value starts -> plain path of its key
	tableKind  map[string]unstable.Kind // plain path -> Table, ArrayTable or InlineTable, as first written
}

// walkPositions parses data once with the unstable parser. It never fails: on a syntax error the maps
// hold what came before it.
func walkPositions(data []byte) *positions {
	ps := &positions{
		lines:     map[string]int{},
		keyAt:     map[[2]int]string{},
		valueAt:   map[[2]int]string{},
		tableKind: map[string]unstable.Kind{},
	}
	ps.lineStarts = append(ps.lineStarts, 0)
	for i, b := range data {
		if b == '\n' {
			ps.lineStarts = append(ps.lineStarts, i+1)
		}
	}

	var p unstable.Parser
	p.Reset(data)
	counts := map[string]int{} // numbered path of an array of tables -> entries so far
	prefix, plainPrefix := "", ""
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			var path, plain string
			var first *unstable.Node
			it := e.Key()
			for it.Next() {
				k := it.Node()
				if first == nil {
					first = k
				}
				path = join(path, string(k.Data))
				plain = join(plain, string(k.Data))
				last := it.IsLast()
				if n, ok := counts[path]; ok && n > 0 && !(last && e.Kind == unstable.ArrayTable) {
					path = join(path, strconv.Itoa(n-1))
				}
			}
			if first == nil {
				continue
			}
			line, col := ps.pos(first.Raw)
			if _, ok := ps.tableKind[plain]; !ok {
				ps.tableKind[plain] = e.Kind
			}
			ps.record(path, line)
			if e.Kind == unstable.ArrayTable {
				n := counts[path]
				counts[path] = n + 1
				path = join(path, strconv.Itoa(n))
				ps.record(path, line)
			}
			ps.keyAt[[2]int{line, col}] = plain
			prefix, plainPrefix = path, plain
		case unstable.KeyValue:
			ps.keyValue(prefix, plainPrefix, e)
		}
	}
	return ps
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}

// pos returns the line and column (1-based, in bytes) of the start of r.
func (ps *positions) pos(r unstable.Range) (line, col int) {
	off := int(r.Offset)
	i := sort.Search(len(ps.lineStarts), func(i int) bool { return ps.lineStarts[i] > off }) - 1
	if i < 0 {
		i = 0
	}
	return i + 1, off - ps.lineStarts[i] + 1
}

func (ps *positions) record(path string, line int) {
	if _, ok := ps.lines[path]; !ok {
		ps.lines[path] = line
	}
}

func (ps *positions) keyValue(prefix, plainPrefix string, kv *unstable.Node) {
	path, plain := prefix, plainPrefix
	var line, col int
	it := kv.Key()
	for it.Next() {
		k := it.Node()
		if line == 0 {
			line, col = ps.pos(k.Raw)
		}
		path = join(path, string(k.Data))
		plain = join(plain, string(k.Data))
		ps.record(path, line)
	}
	if line == 0 {
		return
	}
	ps.keyAt[[2]int{line, col}] = plain
	if v := kv.Value(); v != nil && v.Kind == unstable.InlineTable {
		if _, ok := ps.tableKind[plain]; !ok {
			ps.tableKind[plain] = unstable.InlineTable
		}
	}
	ps.value(path, plain, kv.Value())
}

func (ps *positions) value(path, plain string, v *unstable.Node) {
	if v == nil {
		return
	}
	if v.Raw.Length > 0 {
		line, col := ps.pos(v.Raw)
		ps.valueAt[[2]int{line, col}] = plain
	}
	switch v.Kind {
	case unstable.InlineTable:
		it := v.Children()
		for it.Next() {
			if c := it.Node(); c.Kind == unstable.KeyValue {
				ps.keyValue(path, plain, c)
			}
		}
	case unstable.Array:
		it := v.Children()
		i := 0
		for it.Next() {
			c := it.Node()
			if c.Kind == unstable.Comment {
				continue
			}
			elem := join(path, strconv.Itoa(i))
			i++
			if c.Raw.Length > 0 {
				line, _ := ps.pos(c.Raw)
				ps.record(elem, line)
			}
			ps.value(elem, plain, c)
		}
	}
}

// line returns the line of path, else of its closest enclosing key or table, else 0.
func (ps *positions) line(path string) int {
	for path != "" {
		if l, ok := ps.lines[path]; ok {
			return l
		}
		i := strings.LastIndexByte(path, '.')
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

// kindOf reports whether the document wrote plain as a table header, an array of tables or an inline table.
func (ps *positions) kindOf(plain string) (unstable.Kind, bool) {
	k, ok := ps.tableKind[plain]
	return k, ok
}
