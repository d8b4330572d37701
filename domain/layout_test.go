package domain_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDecisionsLinkNoEngine checks DESIGN.md §12: threading and policy
// import no engine, so neither the store nor an SQL driver is among their
// dependencies.
func TestDecisionsLinkNoEngine(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command:", err)
	}
	cmd := exec.Command(goTool, "list", "-deps",
		"github.com/supportgate/supportgate/threading",
		"github.com/supportgate/supportgate/policy")
	out, err := cmd.Output()
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
	seen := map[string]bool{}
	for _, d := range deps {
		seen[d] = true
		switch {
		case d == "github.com/supportgate/supportgate/store",
			strings.HasPrefix(d, "github.com/supportgate/supportgate/store/"),
			strings.Contains(d, "sqlite3"),
			strings.Contains(d, "pgx"),
			strings.Contains(d, "lib/pq"),
			d == "database/sql":
			t.Errorf("threading or policy depends on %s", d)
		}
	}
	if !seen["github.com/supportgate/supportgate/domain"] {
		t.Errorf("threading and policy do not import domain; deps:\n%s", out)
	}
}
