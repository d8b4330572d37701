package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// imaptest is Dovecot's IMAP compliance tester (issue 12). Its scripted
// tests run against an agent's private folder ("imaptest"), where every
// IMAP rule applies as it is: no group may fail. The groups it skips for
// capabilities we do not offer (CONDSTORE, QRESYNC, SORT, THREAD, …) are
// only counted.
//
// \Recent, which IMAP4rev2 removed, is implemented for private folders, so
// no group is exempted for it.

// imaptestKnownErrors are "Error:" lines of imaptest that do not fail this
// test, each with its reason. Any other one does.
var imaptestKnownErrors = []struct {
	pattern *regexp.Regexp
	reason  string
}{}

var imaptestSummary = regexp.MustCompile(`(?m)^(\d+) test groups: (\d+) failed`)

// TestImaptest runs imaptest's scripted tests against the daemon on an
// agent's private folder and fails on any failed group (issue 12).
func TestImaptest(t *testing.T) {
	bin := imaptestBinary(t) // imaptest_build_test.go
	tests := filepath.Join(filepath.Dir(bin), "tests")
	if _, err := os.Stat("/usr/lib/dovecot/libdovecot.so.0"); err != nil {
		// imaptest links Dovecot's library (Debian's dovecot-core).
		if os.Getenv("CI") == "true" {
			t.Fatalf("dovecot-core is required under CI: %v", err)
		}
		t.Skipf("dovecot-core not installed: %v", err)
	}
	dir := t.TempDir()
	p := freePorts(t)
	cfg := testConfig(t, dir, p)
	cheapAlice(t, cfg) // imaptest_stress_e2e_test.go
	d := startDaemon(t, dir, p, "-config", cfg)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "host=127.0.0.1", "port="+strconv.Itoa(p.IMAP),
		"user=alice@example.test", "pass=demo-alice", "test="+tests)
	cmd.Env = imaptestEnv()
	out, err := cmd.CombinedOutput()
	text := string(out)
	m := imaptestSummary.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("imaptest gave no summary (%v):\n%s", err, text)
	}
	if m[2] != "0" {
		t.Errorf("imaptest: %s of %s test groups failed:\n%s", m[2], m[1], text)
	}
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, "Error:") {
			continue
		}
		known := false
		for _, k := range imaptestKnownErrors {
			if k.pattern.MatchString(line) {
				known = true
				t.Logf("known (%s): %s", k.reason, line)
				break
			}
		}
		if !known {
			t.Errorf("imaptest: %s", line)
		}
	}
	// Only our own faults are [SERVERBUG] or logged as errors (DESIGN.md §6):
	// nothing a client sent may have caused one.
	if log := d.log.String(); strings.Contains(log, "level=ERROR") {
		t.Errorf("the daemon logged errors during imaptest:\n%s", log)
	}
	if strings.Contains(text, "SERVERBUG") {
		t.Errorf("imaptest saw NO [SERVERBUG]")
	}
	t.Logf("imaptest: %s", strings.TrimSpace(text[strings.Index(text, m[0]):]))
}
