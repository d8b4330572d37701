package main

// A harness that builds the real supportgate binary once and runs it as a
// separate process on real sockets, so that tests see what a user sees:
// a kill -9 is a real kill -9, a restart a real restart.

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/internal/dnstest"
)

// builtDaemon is cmd/supportgate built once per test process.
type builtDaemon struct {
	once sync.Once
	path string
	err  error
}

var raceDaemon, plainDaemon builtDaemon

// build builds the binary, with the race detector when race.
func (b *builtDaemon) build(t *testing.T, race bool) string {
	t.Helper()
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "supportgate-bin-")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, "supportgate")
		// -buildvcs=auto: the binary names its commit (`version`) even
		// where GOFLAGS turns stamping off; outside a repository it has none.
		args := []string{"build", "-buildvcs=auto", "-o", b.path}
		if race {
			args = append(args, "-race")
		}
		if out, err := exec.Command("go", append(args, ".")...).CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// daemonBinary builds cmd/supportgate (with -race when the tests run with it)
// once per test run.
func daemonBinary(t *testing.T) string {
	t.Helper()
	return raceDaemon.build(t, raceEnabled)
}

// daemonBinaryPlain builds cmd/supportgate without the race detector, for
// tests that measure the daemon (its memory) rather than check it for
// races: the detector's shadow memory would be measured too.
func daemonBinaryPlain(t *testing.T) string {
	t.Helper()
	if !raceEnabled {
		return daemonBinary(t)
	}
	return plainDaemon.build(t, false)
}

// ports are the listen ports of one daemon.
type ports struct{ MX, Submission, IMAP, HTTP int }

func freePorts(t *testing.T) ports {
	t.Helper()
	return ports{reservePort(t), reservePort(t), reservePort(t), reservePort(t)}
}

// testConfig is the demo configuration (its inbox and three agents) on
// free ports, with data in dir.
func testConfig(t *testing.T, dir string, p ports) string {
	t.Helper()
	s := string(config.ExampleTOML())
	// The quoted forms: a port put in by one replacement (11439) must not
	// hold another one's pattern (1143): the map's order is random.
	for from, to := range map[string]string{
		`"127.0.0.1:2525"`:     fmt.Sprintf(`"127.0.0.1:%d"`, p.MX),
		`"127.0.0.1:2587"`:     fmt.Sprintf(`"127.0.0.1:%d"`, p.Submission),
		`"127.0.0.1:1143"`:     fmt.Sprintf(`"127.0.0.1:%d"`, p.IMAP),
		`"127.0.0.1:9325"`:     fmt.Sprintf(`"127.0.0.1:%d"`, p.HTTP),
		`"./supportgate-data"`: fmt.Sprintf("%q", filepath.Join(dir, "data")),
		// Hermetic: DKIM, DMARC and SPF lookups go to a DNS server on
		// loopback that knows no name, never to the machine's resolver.
		`# resolver = "127.0.0.53:53"`: fmt.Sprintf("resolver = %q", dnstest.New(t).Addr),
	} {
		if !strings.Contains(s, from) {
			t.Fatalf("the example configuration no longer holds %s", from)
		}
		s = strings.ReplaceAll(s, from, to)
	}
	path := filepath.Join(dir, "supportgate.toml")
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// daemon is one running supportgate process.
type daemon struct {
	t      *testing.T
	cmd    *exec.Cmd
	log    *syncBuffer
	ports  ports
	dir    string
	done   chan struct{}
	waited error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startDaemon runs `supportgate serve` in dir with args and waits until
// every port of p accepts connections.
func startDaemon(t *testing.T, dir string, p ports, args ...string) *daemon {
	t.Helper()
	return startDaemonBinary(t, daemonBinary(t), dir, p, args...)
}

// startDaemonBinary is startDaemon with the given binary.
func startDaemonBinary(t *testing.T, bin, dir string, p ports, args ...string) *daemon {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve"}, args...)...)
	cmd.Dir = dir
	d := &daemon{t: t, cmd: cmd, log: &syncBuffer{}, ports: p, dir: dir, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = d.log, d.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.waited = cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		d.stop()
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.log.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for _, port := range []int{p.MX, p.Submission, p.IMAP, p.HTTP} {
		for {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-d.done:
				t.Fatalf("supportgate exited: %v\n%s", d.waited, d.log.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("supportgate does not listen on %d:\n%s", port, d.log.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return d
}

// stop ends the daemon the polite way (SIGTERM) and waits.
func (d *daemon) stop() {
	select {
	case <-d.done:
		return
	default:
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(20 * time.Second):
		d.cmd.Process.Kill()
		<-d.done
		d.t.Errorf("supportgate did not stop within 20s of SIGTERM")
	}
}

// kill ends the daemon with SIGKILL, the crash of DESIGN.md §1.
func (d *daemon) kill() {
	d.cmd.Process.Kill()
	<-d.done
}

func (d *daemon) addr(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }

// needTool returns the path of an external client, skipping the test when
// it is missing outside CI; under CI=true a missing tool is a failure.
func needTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required under CI (install it in .ci/run): %v", name, err)
	}
	t.Skipf("%s not installed: %v", name, err)
	return ""
}

// sendMail is a plain-text SMTP session (loopback needs no TLS): optional
// AUTH, then one message. It returns the server's refusal as *smtp.SMTPError.
func sendMail(addr string, auth sasl.Client, from string, to []string, msg string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if auth != nil {
		if err := c.Auth(auth); err != nil {
			return err
		}
	}
	if err := c.SendMail(from, to, strings.NewReader(msg)); err != nil {
		return err
	}
	return c.Quit()
}

// patchConfig replaces old by new once in the configuration file at path;
// the test fails if the example no longer holds old.
// setResolver points the configuration's [dns] resolver at addr.
func setResolver(t *testing.T, path, addr string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`(?m)^resolver = ".*"$`)
	if !line.Match(b) {
		t.Fatal("the test configuration holds no [dns] resolver line")
	}
	if err := os.WriteFile(path, line.ReplaceAll(b, []byte(fmt.Sprintf("resolver = %q", addr))), 0o600); err != nil {
		t.Fatal(err)
	}
}

func patchConfig(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("the example configuration no longer holds %q", old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
}
