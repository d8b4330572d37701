package cli

import (
	"strings"
	"testing"
)

// TestMigrateStoreArguments: migrate-store's usage errors (exit 2) and
// its refusal without a database to copy into (exit 1, a sentence); the
// copy itself is tested in store/migrate and cmd/supportgate.
func TestMigrateStoreArguments(t *testing.T) {
	f := newFixture(t, 1)
	for _, args := range [][]string{
		{"migrate-store", "--dsnx", "postgres://x"},
		{"migrate-store", "extra"},
	} {
		code, out, errOut := f.run(append(args, "-config", f.cfg)...)
		if code != 2 || out != "" || !strings.Contains(errOut, "usage: supportgate migrate-store") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2 and the usage line", args, code, out, errOut)
		}
	}
	code, out, errOut := f.run("migrate-store", "-config", f.cfg)
	if code != 1 || out != "" || !strings.Contains(errOut, "no PostgreSQL database to copy into: give -dsn") {
		t.Errorf("without a DSN: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if !strings.Contains(Usage, "supportgate migrate-store") {
		t.Error("the usage does not list migrate-store")
	}
}
