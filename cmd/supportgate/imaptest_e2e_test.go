package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
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

// imaptestPeer returns the folder with imaptest's source and build.sh:
// $SUPPORTGATE_PEERS/imaptest, else shared/peers/imaptest beside the
// repository.
func imaptestPeer() string {
	if p := os.Getenv("SUPPORTGATE_PEERS"); p != "" {
		return filepath.Join(p, "imaptest")
	}
	return filepath.Join("..", "..", "..", "shared", "peers", "imaptest")
}

// buildImaptest builds imaptest once per version of its source (in the
// user's cache directory) and returns the binary and its scripts folder.
// Outside CI a missing source or failed build skips the test; under
// CI=true it fails it.
func buildImaptest(t *testing.T) (bin, tests string) {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf("imaptest is required under CI (.ci/run installs its build dependencies): "+format, args...)
		}
		t.Skipf("imaptest unavailable: "+format, args...)
	}
	peer, err := filepath.Abs(imaptestPeer())
	if err != nil {
		missing("%v", err)
	}
	h := sha256.New()
	for _, name := range []string{"build.sh", "imaptest-6d4c580-debian.tar.gz"} {
		f, err := os.Open(filepath.Join(peer, name))
		if err != nil {
			missing("%v", err)
		}
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			missing("%v", err)
		}
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	out := filepath.Join(cache, "supportgate-imaptest", hex.EncodeToString(h.Sum(nil))[:16])
	bin = filepath.Join(out, "imaptest", "src", "imaptest")
	tests = filepath.Join(out, "imaptest", "src", "tests")
	if _, err := os.Stat(bin); err == nil {
		return bin, tests
	}
	// Built in a fresh folder and moved in place whole, so that a build
	// that was interrupted is never taken for a finished one.
	tmp, err := os.MkdirTemp(filepath.Dir(out), "build-")
	if err != nil {
		if err = os.MkdirAll(filepath.Dir(out), 0o755); err == nil {
			tmp, err = os.MkdirTemp(filepath.Dir(out), "build-")
		}
		if err != nil {
			missing("%v", err)
		}
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	if b, err := exec.CommandContext(ctx, "bash", filepath.Join(peer, "build.sh"), tmp).CombinedOutput(); err != nil {
		missing("build.sh: %v\n%s", err, b)
	}
	if err := os.Rename(tmp, out); err != nil {
		if _, serr := os.Stat(bin); serr != nil { // not another run's build
			missing("%v", err)
		}
	}
	return bin, tests
}

var imaptestSummary = regexp.MustCompile(`(?m)^(\d+) test groups: (\d+) failed`)

// TestImaptest runs imaptest's scripted tests against the daemon on an
// agent's private folder and fails on any failed group (issue 12).
func TestImaptest(t *testing.T) {
	bin, tests := buildImaptest(t)
	if _, err := os.Stat("/usr/lib/dovecot/libdovecot.so.0"); err != nil {
		// imaptest links Dovecot's library (Debian's dovecot-core).
		if os.Getenv("CI") == "true" {
			t.Fatalf("dovecot-core is required under CI: %v", err)
		}
		t.Skipf("dovecot-core not installed: %v", err)
	}
	dir := t.TempDir()
	p := freePorts(t)
	d := startDaemon(t, dir, p, "-config", testConfig(t, dir, p))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "host=127.0.0.1", "port="+strconv.Itoa(p.IMAP),
		"user=alice@example.test", "pass=demo-alice", "test="+tests)
	cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH=/usr/lib/dovecot")
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
