package main

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestSideAndMergePython is issue 17's side conversation and merge with
// Python's smtplib and imaplib against the daemon
// (testdata/e2e/side_merge.py); this test checks what left: the side's
// messages went to the vendor and the warehouse, never to the customer, and
// the CLI shows the merge, the side and each event.
func TestSideAndMergePython(t *testing.T) {
	python := needTool(t, "python3")
	dir := t.TempDir()
	p := freePorts(t)
	cfgPath := testConfig(t, dir, p)
	startDaemon(t, dir, p, "-config", cfgPath)
	script, err := filepath.Abs("../../testdata/e2e/side_merge.py")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(python, script, itoa(p.MX), itoa(p.Submission), itoa(p.IMAP)).CombinedOutput()
	t.Logf("side_merge.py:\n%s", out)
	if err != nil || !bytes.HasSuffix(bytes.TrimSpace(out), []byte("OK")) {
		t.Fatalf("side_merge.py failed: %v", err)
	}
	// Two side messages and two replies left.
	envs := waitOutbox(t, filepath.Join(dir, "data", "outbox"), 4)
	var sides int
	for _, e := range envs {
		raw := string(e.raw)
		if strings.Contains(raw, "sales@vendor.example") {
			sides++
			for _, r := range e.RcptTo {
				if strings.HasPrefix(r, "kim@") {
					t.Errorf("a side message went to the customer: %v", e.RcptTo)
				}
			}
			if strings.Contains(raw, "kim@") || strings.Contains(raw, "#side") {
				t.Errorf("a side message shows the customer or #side:\n%s", raw)
			}
		}
	}
	if sides != 2 {
		t.Errorf("%d side messages left, want 2", sides)
	}
	for _, e := range envs {
		if strings.Contains(string(e.raw), "Please send one.") {
			rc := slices.Sorted(slices.Values(e.RcptTo))
			if !slices.Equal(rc, []string{"dock@warehouse.example", "sales@vendor.example"}) {
				t.Errorf("bob's answer in the side went to %v, want the vendor and the warehouse that joined", rc)
			}
		}
	}
	code, js, _ := runCLI("", "conversations", "show", "1", "--json", "-config", cfgPath)
	var c conversationJSON
	if code != 0 || json.Unmarshal([]byte(js), &c) != nil {
		t.Fatalf("conversations show 1: %d %s", code, js)
	}
	if c.ID != 2 || c.MergedFrom != 1 || len(c.Sides) != 1 || !slices.ContainsFunc(c.Events, func(e eventJSON) bool { return e.Type == "merged" }) {
		t.Errorf("conversations show 1 after the merge: %s", js)
	}
	code, text, _ := runCLI("", "conversations", "show", "2", "-config", cfgPath)
	if code != 0 || !strings.Contains(text, "merged conversation #1") || !strings.Contains(text, "side 1") {
		t.Errorf("conversations show 2 does not say what happened:\n%s", text)
	}
}
