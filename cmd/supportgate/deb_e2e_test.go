package main

// The Debian package as an admin installs it (issue 14): built by
// packaging/build-deb.sh, installed with dpkg -i, its unit accepted by
// systemd-analyze, the daemon started with the unit's ExecStart as the
// unit's user (systemd itself is not PID 1 in CI), answering on its
// ports; then purged.

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/supportgate/supportgate/internal/dnstest"
)

// unitDirectives reads the [Service] keys of a systemd unit file (the
// last value of each key, as systemd keeps for ExecStart and the like).
func unitDirectives(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys := map[string]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
		default:
			k, v, _ := strings.Cut(line, "=")
			keys[section+"."+strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return keys
}

// TestDebianPackage builds the .deb, installs it, checks the unit, the
// user, the shipped configuration and `version`, runs the installed
// daemon the way the unit does, and purges the package. It needs root,
// dpkg, systemd-analyze and setpriv: outside CI it skips without them,
// under CI=true their absence is a failure. It refuses to touch a machine
// where supportgate is installed or has left its directories.
func TestDebianPackage(t *testing.T) {
	ci := os.Getenv("CI") == "true"
	if os.Geteuid() != 0 {
		if ci {
			t.Fatal("TestDebianPackage installs a package: CI runs as root")
		}
		t.Skip("installing a package needs root")
	}
	for _, tool := range []string{"bash", "dpkg", "dpkg-deb", "systemd-analyze", "setpriv", "getent"} {
		needTool(t, tool)
	}
	if exec.Command("dpkg", "-s", "supportgate").Run() == nil {
		t.Skip("supportgate is installed on this machine; the test installs and purges its own package")
	}
	for _, d := range []string{"/etc/supportgate", "/var/lib/supportgate"} {
		if _, err := os.Stat(d); err == nil {
			t.Skipf("%s exists on this machine (a supportgate store or keys?); the test would write into it", d)
		}
	}
	_, userErr := user.Lookup("supportgate")
	userExisted := userErr == nil

	run := func(name string, args ...string) (string, error) {
		t.Helper()
		out, err := exec.Command(name, args...).CombinedOutput()
		return string(out), err
	}
	purge := func() {
		if out, err := run("dpkg", "--purge", "supportgate"); err != nil {
			t.Errorf("dpkg --purge: %v\n%s", err, out)
		}
	}
	// Registered first, so that it runs last: the daemon stops before.
	t.Cleanup(func() {
		if exec.Command("dpkg", "-s", "supportgate").Run() == nil {
			purge()
		}
		os.RemoveAll("/etc/supportgate")
		os.RemoveAll("/var/lib/supportgate")
		if !userExisted {
			if _, err := user.Lookup("supportgate"); err == nil {
				if out, err := run("userdel", "supportgate"); err != nil {
					t.Errorf("userdel: %v\n%s", err, out)
				}
			}
			if _, err := user.LookupGroup("supportgate"); err == nil {
				run("groupdel", "supportgate")
			}
		}
	})

	// Build and install.
	build := exec.Command("bash", "../../packaging/build-deb.sh", t.TempDir())
	var stderr bytes.Buffer
	build.Stderr = &stderr
	stdout, err := build.Output()
	if err != nil {
		t.Fatalf("build-deb.sh: %v\n%s", err, stderr.String())
	}
	deb := strings.TrimSpace(string(stdout))
	if out, err := run("dpkg", "-i", deb); err != nil {
		t.Fatalf("dpkg -i %s: %v\n%s", deb, err, out)
	}
	pkgVersion := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(deb), "supportgate_"), ".deb")
	pkgVersion = pkgVersion[:strings.LastIndexByte(pkgVersion, '_')]

	// The unit: systemd accepts it, and it is hardened as issue 14 asks.
	unit := "/usr/lib/systemd/system/supportgate.service"
	if out, err := run("systemd-analyze", "verify", unit); err != nil {
		t.Errorf("systemd-analyze verify %s: %v\n%s", unit, err, out)
	} else if strings.TrimSpace(out) != "" {
		t.Logf("systemd-analyze verify:\n%s", out)
	}
	keys := unitDirectives(t, unit)
	for k, want := range map[string]string{
		"Service.User": "supportgate", "Service.Group": "supportgate",
		"Service.AmbientCapabilities": "CAP_NET_BIND_SERVICE", "Service.CapabilityBoundingSet": "CAP_NET_BIND_SERVICE",
		"Service.ExecReload": "/bin/kill -HUP $MAINPID", "Service.StateDirectory": "supportgate",
		"Service.NoNewPrivileges": "yes", "Service.ProtectSystem": "strict", "Service.ProtectHome": "yes",
		"Service.PrivateTmp": "yes", "Install.WantedBy": "multi-user.target",
	} {
		if keys[k] != want {
			t.Errorf("the unit's %s is %q; want %q", k, keys[k], want)
		}
	}

	// The user and the directories the package made.
	out, err := run("getent", "passwd", "supportgate")
	if f := strings.Split(strings.TrimSpace(out), ":"); err != nil || len(f) != 7 || f[5] != "/var/lib/supportgate" || f[6] != "/usr/sbin/nologin" {
		t.Errorf("the user supportgate: %v %q", err, out)
	}
	u, err := user.Lookup("supportgate")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	for path, want := range map[string]struct {
		uid  int
		mode os.FileMode
	}{
		"/var/lib/supportgate":              {uid, 0o750 | os.ModeDir},
		"/etc/supportgate":                  {0, 0o750 | os.ModeDir},
		"/etc/supportgate/supportgate.toml": {0, 0o640},
	} {
		st, err := os.Stat(path)
		if err != nil || int(st.Sys().(*syscall.Stat_t).Uid) != want.uid || st.Mode() != want.mode {
			t.Errorf("%s: %v; want owner %d, mode %v", path, err, want.uid, want.mode)
		}
	}

	// The shipped configuration refuses to run until the agent has a
	// password; check-config finds it without -config.
	shipped, _ := os.ReadFile("../../packaging/supportgate.toml")
	line := 0
	for i, l := range strings.Split(string(shipped), "\n") {
		if strings.HasPrefix(l, "password_hash") {
			line = i + 1
		}
	}
	out, err = run("/usr/bin/supportgate", "check-config")
	if err == nil || !strings.Contains(out, fmt.Sprintf("/etc/supportgate/supportgate.toml:%d: ", line)) || !strings.Contains(out, "supportgate passwd") {
		t.Errorf("check-config of the shipped configuration: %v; want its password_hash line %d refused\n%s", err, line, out)
	}

	// version: the package's release and the revision it was built from.
	out, err = run("/usr/bin/supportgate", "version")
	if err != nil || !strings.HasPrefix(out, "supportgate "+pkgVersion+" (revision ") {
		t.Errorf("version: %v %q; want release %s and a revision", err, out, pkgVersion)
	}
	if head, err := exec.Command("git", "rev-parse", "HEAD").Output(); err == nil && !strings.Contains(out, strings.TrimSpace(string(head))) {
		t.Errorf("version: %q; want the revision %s", out, head)
	}

	// Configure as the README says, with the installed commands, on
	// loopback high ports.
	p := freePorts(t)
	dkimFile := "/etc/supportgate/dkim.pem"
	if out, err := run("/usr/bin/supportgate", "dkim-keygen", dkimFile); err != nil || !strings.HasPrefix(out, "supportgate: wrote") {
		t.Fatalf("dkim-keygen: %v\n%s", err, out)
	}
	os.Chown(dkimFile, uid, -1)
	const password = "package test password"
	passwd := exec.Command("/usr/bin/supportgate", "passwd")
	passwd.Stdin = strings.NewReader(password + "\n")
	hash, err := passwd.Output()
	if err != nil {
		t.Fatalf("passwd: %v", err)
	}
	cfg := fmt.Sprintf(`[server]
hostname = "mail.example.test"
data_dir = "/var/lib/supportgate"
mx_listen = "127.0.0.1:%d"
submission_listen = "127.0.0.1:%d"
imap_listen = "127.0.0.1:%d"
http_listen = "127.0.0.1:%d"

[dns]
resolver = %q

[outbound]
mode = "directory"

[dkim]
selector = "sg1"
private_key_file = %q

[[inbox]]
address = "support@example.test"
name = "Example Support"

[[agent]]
email = "alice@example.test"
password_hash = %q
roles = { "support@example.test" = "admin" }
`, p.MX, p.Submission, p.IMAP, p.HTTP, dnstest.New(t).Addr, dkimFile, strings.TrimSpace(string(hash)))
	// Writing into the installed file keeps its owner and mode.
	if err := os.WriteFile("/etc/supportgate/supportgate.toml", []byte(cfg), 0o640); err != nil {
		t.Fatal(err)
	}

	asUser := func(args ...string) *exec.Cmd {
		return exec.Command("setpriv", append([]string{"--reuid=" + keys["Service.User"], "--regid=" + keys["Service.Group"], "--init-groups", "--"}, args...)...)
	}
	// check-config as the unit's user: it reads what the daemon will read.
	if out, err := asUser("/usr/bin/supportgate", "check-config").CombinedOutput(); err != nil || !strings.Contains(string(out), "OK") {
		t.Fatalf("check-config as supportgate: %v\n%s", err, out)
	}

	// The daemon, started with the unit's ExecStart as the unit's user.
	execStart := strings.Fields(keys["Service.ExecStart"])
	if len(execStart) == 0 || execStart[0] != "/usr/bin/supportgate" {
		t.Fatalf("the unit's ExecStart is %q", keys["Service.ExecStart"])
	}
	cmd := asUser(execStart...)
	cmd.Dir = keys["Service.WorkingDirectory"]
	log := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	stop := func() error {
		select {
		case <-exited:
			return waitErr
		default:
		}
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
			return waitErr
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-exited
			return fmt.Errorf("no exit within 30 s of SIGTERM")
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("daemon log:\n%s", log.String())
		}
	})
	waitPorts(t, exited, log, p.MX, p.Submission, p.IMAP, p.HTTP)

	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if m := regexp.MustCompile(`(?m)^Uid:\s+(\d+)\s+(\d+)`).FindSubmatch(status); m == nil || string(m[1]) != u.Uid || string(m[2]) != u.Uid {
		t.Errorf("the daemon does not run as supportgate (uid %s): %q", u.Uid, m)
	}

	// It answers: the MX takes a customer's mail, alice reads it over
	// IMAP, /healthz is up.
	sendCustomerMail(t, fmt.Sprintf("127.0.0.1:%d", p.MX), 1)
	if msgs := fetchInbox(t, fmt.Sprintf("127.0.0.1:%d", p.IMAP), "alice@example.test", password); len(msgs) != 1 {
		t.Errorf("alice sees %d messages; want 1", len(msgs))
	}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", p.HTTP))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz: %v %v", err, resp)
	} else {
		resp.Body.Close()
	}
	for _, f := range []string{"supportgate.db", "token.key"} {
		st, err := os.Stat(filepath.Join("/var/lib/supportgate", f))
		// Owned by the daemon; private through the directory's 0750 (the
		// unit's UMask=0027 does not apply without systemd).
		if err != nil || int(st.Sys().(*syscall.Stat_t).Uid) != uid {
			t.Errorf("/var/lib/supportgate/%s: %v; want it the daemon's", f, err)
		}
	}
	// The CLI beside it, as the README runs it.
	if out, err := asUser("/usr/bin/supportgate", "conversations", "list").CombinedOutput(); err != nil || !strings.Contains(string(out), "Crash 1") {
		t.Errorf("conversations list as supportgate: %v\n%s", err, out)
	}

	if err := stop(); err != nil {
		t.Errorf("the daemon's exit after SIGTERM: %v", err)
	}
	purge()
	for _, gone := range []string{"/usr/bin/supportgate", unit, "/etc/supportgate/supportgate.toml"} {
		if _, err := os.Stat(gone); err == nil {
			t.Errorf("%s is still there after dpkg --purge", gone)
		}
	}
	if _, err := os.Stat("/var/lib/supportgate/supportgate.db"); err != nil {
		t.Errorf("dpkg --purge removed the store: %v; it keeps the mail", err)
	}
}

// waitPorts waits until every port accepts connections, or the process
// exits.
func waitPorts(t *testing.T, exited <-chan struct{}, log *syncBuffer, ports ...int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for _, port := range ports {
		for {
			c, err := (&net.Dialer{Timeout: time.Second}).Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-exited:
				t.Fatalf("supportgate exited:\n%s", log.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("supportgate does not listen on %d:\n%s", port, log.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
