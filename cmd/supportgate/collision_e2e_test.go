package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestCollisionHoldPython is issue 17's collision hold with Python's smtplib
// and imaplib against the daemon (testdata/e2e/collision.py): two agents
// reply to the same message at once, one is sent, the other client gets the
// 550 naming the first agent, and #send then sends it. Two replies leave, the
// second without its #send line.
func TestCollisionHoldPython(t *testing.T) {
	python := needTool(t, "python3")
	dir := t.TempDir()
	p := freePorts(t)
	startDaemon(t, dir, p, "-config", testConfig(t, dir, p))
	script, err := filepath.Abs("../../testdata/e2e/collision.py")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(python, script, itoa(p.MX), itoa(p.Submission), itoa(p.IMAP)).CombinedOutput()
	t.Logf("collision.py:\n%s", out)
	if err != nil || !bytes.HasSuffix(bytes.TrimSpace(out), []byte("OK")) {
		t.Fatalf("collision.py failed: %v", err)
	}
	envs := waitOutbox(t, filepath.Join(dir, "data", "outbox"), 2)
	if len(envs) != 2 {
		t.Fatalf("%d messages left, want the two replies", len(envs))
	}
	for _, e := range envs {
		if !slices.Contains(e.RcptTo, "kim@customer.example") || strings.Contains(string(e.raw), "#send") {
			t.Errorf("a reply went to %v or shows #send:\n%s", e.RcptTo, e.raw)
		}
	}
}
