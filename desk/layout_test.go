package desk_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportsPointOneWay checks DESIGN.md §12 for desk: gateway → desk →
// (threading, policy, queue) → store. desk depends on no protocol edge and
// no engine: the engine is whatever implements desk.Store.
func TestImportsPointOneWay(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command:", err)
	}
	out, err := exec.Command(goTool, "list", "-deps", "github.com/supportgate/supportgate/desk").Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("go list -deps: %v\n%s", err, msg)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 {
		t.Fatal("go list -deps named nothing")
	}
	const mod = "github.com/supportgate/supportgate/"
	for _, d := range deps {
		switch {
		case strings.HasPrefix(d, mod+"gateway"), strings.HasPrefix(d, mod+"cmd"),
			strings.HasPrefix(d, mod+"store/") && d != mod+"store/searchtext", // the engines: store/sqlite, store/postgres
			strings.Contains(d, "sqlite3"), strings.Contains(d, "pgx"), strings.Contains(d, "lib/pq"):
			t.Errorf("desk depends on %s", d)
		}
	}
}
