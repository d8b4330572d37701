package postgres

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/supportgate/supportgate/store"
)

// dumpTables returns every row of the tables a stored message touches, as
// text, in a fixed order.
func dumpTables(t *testing.T, s *Store) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, table := range []string{"counters", "conversations", "participants", "messages", "message_ids", "folder_entries",
		"seen", "events", "followers", "message_meta", "conversation_keywords"} {
		rows, err := s.pool.Query(context.Background(), `SELECT * FROM `+table+` ORDER BY 1, 2`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			for _, v := range vals {
				fmt.Fprintf(&b, "%v|", v)
			}
			out[table] = append(out[table], b.String())
		}
		rows.Close()
	}
	return out
}

// TestImportInboundEqualsAddInbound: a store filled by ImportInbound holds
// exactly what the same messages stored one by one with AddInbound give,
// replies joining the conversation of the message before them.
func TestImportInboundEqualsAddInbound(t *testing.T) {
	ctx := context.Background()
	var ins []store.Inbound
	for i := range 9 {
		in := newInbound([]string{"support@example.com", "sales@example.com"}[i%3/2], fmt.Sprintf("m%d@example.com", i), i)
		if i%2 == 1 {
			in.SeenMessageIDs = []string{fmt.Sprintf("m%d@example.com", i-1), "unknown@example.com"}
			in.Reopen = true
		}
		ins = append(ins, in)
	}
	ins = append(ins, ins[3]) // a duplicate: not stored twice

	one := openTest(t, pg.DSN(t))
	var conv int64
	for i, in := range ins {
		if i%2 == 1 && i < 9 {
			in.Conversation = conv
		}
		conv = mustInbound(t, one, in).Conversation
	}

	bulk := openTest(t, pg.DSN(t))
	imported := make([]store.Inbound, len(ins))
	copy(imported, ins)
	for i := 1; i < 9; i += 2 {
		imported[i].Conversation = -1
	}
	res, err := bulk.ImportInbound(ctx, imported)
	if err != nil {
		t.Fatal(err)
	}
	if !res[9].Duplicate || res[9].Message != res[3].Message || res[1].Conversation != res[0].Conversation {
		t.Fatalf("results: %+v", res)
	}
	if a, b := dumpTables(t, one), dumpTables(t, bulk); !reflect.DeepEqual(a, b) {
		for k := range a {
			if !reflect.DeepEqual(a[k], b[k]) {
				t.Errorf("%s: one by one\n%v\nimported\n%v", k, a[k], b[k])
			}
		}
	}
	// Nothing of a failing import is stored.
	before := dumpTables(t, bulk)
	if _, err := bulk.ImportInbound(ctx, []store.Inbound{newInbound("support@example.com", "new@example.com", 20), {Conversation: -5}}); err == nil {
		t.Fatal("an import that refers before its first message succeeded")
	}
	if after := dumpTables(t, bulk); !reflect.DeepEqual(before, after) {
		t.Fatal("a failed import left rows behind")
	}
}
