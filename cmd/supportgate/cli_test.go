package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/supportgate/supportgate/config"
)

func runCLI(stdin string, args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestPasswd(t *testing.T) {
	code, out, errOut := runCLI("s3cret password\n", "passwd")
	if code != 0 {
		t.Fatalf("passwd exited %d: %s", code, errOut)
	}
	hash := strings.TrimSpace(out)
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte("s3cret password")); err != nil {
		t.Errorf("passwd printed %q, which does not match the password: %v", hash, err)
	}
	if code, _, errOut := runCLI("", "passwd"); code == 0 || !strings.Contains(errOut, "empty") {
		t.Errorf("passwd with no password: exit %d, %q", code, errOut)
	}
}

func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	os.WriteFile(good, config.ExampleTOML(), 0o600)
	if code, out, errOut := runCLI("", "check-config", good); code != 0 || !strings.Contains(out, "OK") {
		t.Errorf("check-config of the example: exit %d, %q %q", code, out, errOut)
	}
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, append(config.ExampleTOML(), []byte("\n[server2]\nfoo = 1\n")...), 0o600)
	code, _, errOut := runCLI("", "check-config", bad)
	if code != 1 || !strings.Contains(errOut, bad+":") {
		t.Errorf("check-config of a bad file: exit %d, %q; want 1 and file:line:", code, errOut)
	}
	if code, _, _ := runCLI("", "check-config"); code != 2 {
		t.Errorf("check-config without a file: exit %d, want 2", code)
	}
}

func TestVersionAndUsage(t *testing.T) {
	if code, out, _ := runCLI("", "version"); code != 0 || !strings.HasPrefix(out, "supportgate ") {
		t.Errorf("version: exit %d, %q", code, out)
	}
	if code, _, errOut := runCLI("", "frobnicate"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Errorf("unknown command: exit %d, %q", code, errOut)
	}
	if code, _, _ := runCLI(""); code != 2 {
		t.Errorf("no command: exit %d, want 2", code)
	}
}

// TestServeRefusesBadConfig: serve stops with the file:line: error.
func TestServeRefusesBadConfig(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(bad, []byte("[server]\nhostname = 42\n"), 0o600)
	code, _, errOut := runCLI("", "serve", "-config", bad)
	if code != 1 || !strings.Contains(errOut, bad+":2:") {
		t.Errorf("serve with a bad config: exit %d, %q", code, errOut)
	}
}

func TestConversationsCommand(t *testing.T) {
	dir := t.TempDir()
	p := freePorts(t)
	cfg := testConfig(t, dir, p)
	d := startDaemon(t, dir, p, "-config", cfg)
	sendCustomerMail(t, d.addr(p.MX), 0)
	sendCustomerMail(t, d.addr(p.MX), 1)
	code, out, errOut := runCLI("", "conversations", "list", "--json", "-config", cfg)
	var list []conversationJSON
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 2 || list[0].ID != 2 || list[1].Owner != "erin@customer.example" {
		t.Fatalf("conversations list --json: exit %d, %q %q", code, out, errOut)
	}
	code, out, _ = runCLI("", "conversations", "show", "1", "-config", cfg)
	if code != 0 || !strings.Contains(out, "Conversation 1 [open]") || !strings.Contains(out, "inbound") {
		t.Errorf("conversations show 1: exit %d\n%s", code, out)
	}
	if code, _, errOut := runCLI("", "conversations", "show", "99", "-config", cfg); code != 1 || !strings.Contains(errOut, "no conversation 99") {
		t.Errorf("show 99: exit %d, %q", code, errOut)
	}
	if code, _, _ := runCLI("", "conversations", "frob"); code != 2 {
		t.Errorf("bad subcommand: exit %d", code)
	}
}
