package main

// The administrator's commands of DESIGN.md §11 as a user runs them: the
// built binary, a terminal (through script(1)), a running daemon.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/supportgate/supportgate/gateway"
)

// onTerminal runs the binary with args on a pseudo-terminal made by
// script(1) (util-linux, which keeps the terminal's echo on when its own
// input is a pipe, as here), and types each line of the dialog once the
// output shows its prompt (the prompts must differ from each other). It returns the terminal's output and the
// exit code.
func onTerminal(t *testing.T, command string, dialog [][2]string) (string, int) {
	t.Helper()
	script := needTool(t, "script")
	cmd := exec.Command(script, "--quiet", "--return", "--command", command, "/dev/null")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer stdin.Close()
	deadline := time.After(60 * time.Second)
	for _, step := range dialog {
		prompt, line := step[0], step[1]
		for !strings.Contains(out.String(), prompt) {
			select {
			case err := <-done:
				t.Fatalf("%s ended before prompting %q: %v\n%s", command, prompt, err, out.String())
			case <-deadline:
				t.Fatalf("%s did not prompt %q:\n%s", command, prompt, out.String())
			case <-time.After(10 * time.Millisecond):
			}
		}
		if _, err := io.WriteString(stdin, line+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case err := <-done:
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), code
	case <-deadline:
		cmd.Process.Kill()
		t.Fatalf("%s did not end:\n%s", command, out.String())
	}
	return "", 0
}

// TestPasswdOnTerminal: on a terminal, passwd prompts, does not echo what
// is typed, asks twice and refuses a mismatch (DESIGN.md §11).
func TestPasswdOnTerminal(t *testing.T) {
	bin := daemonBinary(t)
	// The harness echoes what a program that reads a line leaves alone, so
	// that the absence of the password below means something.
	out, _ := onTerminal(t, "sh -c 'echo Name:; read x'", [][2]string{{"Name:", "visible-typing"}})
	if !strings.Contains(out, "visible-typing") {
		t.Fatalf("script's terminal does not echo input, so the test proves nothing:\n%q", out)
	}

	const pw = "correct horse 42"
	out, code := onTerminal(t, bin+" passwd", [][2]string{{"New password: ", pw}, {"Type it again: ", pw}})
	if code != 0 {
		t.Fatalf("passwd on a terminal exited %d:\n%s", code, out)
	}
	if strings.Contains(out, "horse") {
		t.Errorf("the password was echoed:\n%q", out)
	}
	hash := regexp.MustCompile(`\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}`).FindString(out)
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)); err != nil {
		t.Errorf("passwd printed no hash of the password (%v):\n%q", err, out)
	}

	out, code = onTerminal(t, bin+" passwd", [][2]string{{"New password: ", pw}, {"Type it again: ", pw + "!"}})
	if code != 1 || !strings.Contains(out, "differ") || strings.Contains(out, "$2a$") || strings.Contains(out, "horse") {
		t.Errorf("passwd with two different passwords: exit %d\n%q", code, out)
	}
}

// TestVersionShowsRevision: a binary built from the git tree names the
// commit it was built from. In a linked worktree (.git is a file) go build
// stamps nothing (golang/go#58218); the binary then says so, and
// TestDebianPackage checks the revision build-deb.sh sets with -ldflags.
func TestVersionShowsRevision(t *testing.T) {
	git := needTool(t, "git")
	head, err := exec.Command(git, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	top, err := exec.Command(git, "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(daemonBinary(t), "version").CombinedOutput()
	if err != nil {
		t.Fatalf("version: %v\n%s", err, out)
	}
	rev := strings.TrimSpace(string(head))
	want := "revision " + rev
	if st, err := os.Stat(filepath.Join(strings.TrimSpace(string(top)), ".git")); err == nil && !st.IsDir() {
		want = "revision unknown"
		t.Logf("a linked git worktree: go build stamps no revision")
	}
	// The release is "dev", or the pseudo-version go build gives a module
	// built from a clean checkout (v0.0.0-<time>-<revision>).
	release := strings.HasPrefix(string(out), "supportgate dev (") || strings.HasPrefix(string(out), "supportgate v")
	if !release || !strings.Contains(string(out), want) {
		t.Errorf("version printed %q; want %q", out, want)
	}
}

// TestCommandsWithoutConfig: with no -config and no file to find, a
// command other than serve says it uses the demo, and creates no store.
func TestCommandsWithoutConfig(t *testing.T) {
	bin := daemonBinary(t)
	if _, err := os.Stat("/etc/supportgate/supportgate.toml"); err == nil {
		t.Skip("/etc/supportgate/supportgate.toml exists on this machine: the lookup finds it")
	}
	dir := t.TempDir()
	for _, args := range [][]string{{"queue", "list"}, {"conversations", "list"}, {"backup", filepath.Join(dir, "backup")}} {
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "using the embedded demo configuration") || !strings.Contains(string(out), "no store in ./supportgate-data") {
			t.Errorf("%s in an empty directory: %v\n%s", args, err, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "supportgate-data")); err == nil {
		t.Error("a command created ./supportgate-data")
	}
	cmd := exec.Command(bin, "check-config")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "no configuration file") {
		t.Errorf("check-config with nothing to check: %v\n%s", err, out)
	}
	cmd = exec.Command(bin, "dns")
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil || !strings.Contains(stderr.String(), "embedded demo") || !strings.Contains(stdout.String(), "example.test.\t3600\tIN\tMX\t10 mail.example.test.") {
		t.Errorf("dns of the demo: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
}

// TestServeRefusesWhatCheckConfigRefuses: serve opens what check-config
// opens and stops with the same file:line: sentence, and refuses the demo
// passwords on a public address.
func TestServeRefusesWhatCheckConfigRefuses(t *testing.T) {
	dir := t.TempDir()
	p := freePorts(t)
	path := testConfig(t, dir, p)
	cert := filepath.Join(dir, "cert.pem")
	os.WriteFile(cert, []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), 0o600)
	patchConfig(t, path, "# [dkim]\n", "[dkim]\n")
	patchConfig(t, path, `# selector = "sg1"`, `selector = "sg1"`)
	patchConfig(t, path, `# private_key_file = "/etc/supportgate/dkim.pem"`, fmt.Sprintf("private_key_file = %q", cert))
	line := 0
	data, _ := os.ReadFile(path)
	for i, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "private_key_file") {
			line = i + 1
		}
	}
	want := fmt.Sprintf("%s:%d: dkim.private_key_file: %s holds a certificate, not a private key", path, line, cert)
	for _, cmd := range []string{"check-config", "serve"} {
		code, _, errOut := runCLI("", cmd, "-config", path)
		if code != 1 || !strings.Contains(errOut, want) {
			t.Errorf("%s with a certificate as DKIM key: exit %d\n%s\nwant %q", cmd, code, errOut, want)
		}
	}

	path = testConfig(t, t.TempDir(), p)
	patchConfig(t, path, fmt.Sprintf("mx_listen = \"127.0.0.1:%d\"", p.MX), fmt.Sprintf("mx_listen = \":%d\"", p.MX))
	for _, cmd := range []string{"check-config", "serve"} {
		code, _, errOut := runCLI("", cmd, "-config", path)
		if code != 1 || strings.Count(errOut, "has the password hash of the demo agent") != 3 {
			t.Errorf("%s of the demo agents on a public address: exit %d\n%s", cmd, code, errOut)
		}
	}
}

// TestBackupWhileDaemonRuns: `supportgate backup` beside a daemon that
// keeps receiving mail writes a store that opens, as the README's restore
// steps use it, with every conversation committed before the backup.
func TestBackupWhileDaemonRuns(t *testing.T) {
	dir := t.TempDir()
	p := freePorts(t)
	cfg := testConfig(t, dir, p)
	d := startDaemon(t, dir, p, "-config", cfg)
	const before = 20
	for i := range before {
		sendCustomerMail(t, d.addr(p.MX), i)
	}
	// More mail arrives while the backup runs.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var sendErr error
	var during atomic.Int64
	wg.Add(1)
	senderDone := make(chan struct{})
	go func() {
		defer wg.Done()
		defer close(senderDone)
		for i := before; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			msg := fmt.Sprintf("From: Erin <erin@customer.example>\r\nTo: support@example.test\r\nSubject: During %d\r\n"+
				"Message-ID: <during-%d@customer.example>\r\n\r\nMore.\r\n", i, i)
			if err := sendMail(d.addr(p.MX), nil, "erin@customer.example", []string{"support@example.test"}, msg); err != nil {
				sendErr = err
				return
			}
			during.Add(1)
		}
	}()
	// The backup starts once the daemon is busy writing.
	for during.Load() == 0 {
		select {
		case <-senderDone:
			t.Fatalf("MX: %v", sendErr)
		case <-time.After(5 * time.Millisecond):
		}
	}
	backup := filepath.Join(dir, "backup")
	code, out, errOut := runCLI("", "backup", backup, "-config", cfg)
	close(stop)
	wg.Wait()
	if sendErr != nil {
		t.Errorf("MX during the backup: %v", sendErr)
	}
	if code != 0 || !strings.Contains(out, filepath.Join(backup, "supportgate.db")) {
		t.Fatalf("backup: exit %d\n%s%s", code, out, errOut)
	}
	for _, f := range []string{"supportgate.db", gateway.SecretFile} {
		st, err := os.Stat(filepath.Join(backup, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s in the backup: %v, mode %v; want 0600", f, err, st.Mode())
		}
	}
	if code, _, errOut := runCLI("", "backup", backup, "-config", cfg); code != 1 || !strings.Contains(errOut, "exists") {
		t.Errorf("a second backup into the same directory: exit %d, %s", code, errOut)
	}

	// Restore as the README says: both files into an empty data directory.
	restored := filepath.Join(dir, "restored")
	os.MkdirAll(restored, 0o750)
	for _, f := range []string{"supportgate.db", gateway.SecretFile} {
		b, err := os.ReadFile(filepath.Join(backup, f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(restored, f), b, 0o600)
	}
	orig, _ := os.ReadFile(filepath.Join(dir, "data", gateway.SecretFile))
	if copied, _ := os.ReadFile(filepath.Join(restored, gateway.SecretFile)); !bytes.Equal(orig, copied) {
		t.Error("the backup's token key differs from the daemon's")
	}
	restoredCfg := filepath.Join(dir, "restored.toml")
	b, _ := os.ReadFile(cfg)
	os.WriteFile(restoredCfg, bytes.Replace(b, []byte(fmt.Sprintf("%q", filepath.Join(dir, "data"))), []byte(fmt.Sprintf("%q", restored)), 1), 0o600)
	code, out, errOut = runCLI("", "conversations", "list", "--json", "-config", restoredCfg)
	var list []conversationJSON
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil {
		t.Fatalf("conversations list of the restored store: exit %d\n%s%s", code, out, errOut)
	}
	subjects := map[string]bool{}
	for _, c := range list {
		subjects[c.Subject] = true
	}
	for i := range before {
		if !subjects[fmt.Sprintf("Crash %d", i)] {
			t.Errorf("the restored store lacks conversation \"Crash %d\" (it has %d)", i, len(list))
		}
	}
	t.Logf("the backup holds %d conversations, %d of them received during the backup", len(list), len(list)-before)
}

// TestShippedConfiguration: the package's /etc/supportgate/supportgate.toml
// is refused until its agent has a password, at that line and for nothing
// else; with one it passes check-config.
func TestShippedConfiguration(t *testing.T) {
	shipped, err := os.ReadFile("../../packaging/supportgate.toml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	doc := strings.Replace(string(shipped), `data_dir = "/var/lib/supportgate"`, fmt.Sprintf("data_dir = %q", filepath.Join(dir, "data")), 1)
	path := filepath.Join(dir, "supportgate.toml")
	os.WriteFile(path, []byte(doc), 0o640)
	line := 0
	for i, l := range strings.Split(doc, "\n") {
		if strings.HasPrefix(l, "password_hash") {
			line = i + 1
		}
	}
	code, _, errOut := runCLI("", "check-config", path)
	if code != 1 || strings.TrimSpace(errOut) != fmt.Sprintf("%s:%d: agent \"alice@example.com\" has a password_hash that is not a bcrypt hash ($2a$, $2b$ or $2y$); `supportgate passwd` prints one", path, line) {
		t.Errorf("check-config of the shipped configuration: exit %d\n%s", code, errOut)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte("a password"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path, []byte(strings.Replace(doc, `"SET-ME: run supportgate passwd"`, fmt.Sprintf("%q", hash), 1)), 0o640)
	if code, out, errOut := runCLI("", "check-config", path); code != 0 || !strings.Contains(out, "OK") {
		t.Errorf("check-config of the shipped configuration with a password: exit %d\n%s%s", code, out, errOut)
	}
}
