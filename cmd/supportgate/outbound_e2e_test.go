package main

// Relay mode with STARTTLS, AUTH from relay_credentials_file and DKIM, and
// mx mode through the [dns] resolver, end to end through the daemon.

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/supportgate/supportgate/internal/dnstest"
)

func (r *testRelay) triedData() []relayMsg {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]relayMsg(nil), r.tried...)
}

// TestRelayTLSAuthDKIMRetrySendsSameBytes: the daemon relays over STARTTLS
// (the relay's certificate verified), authenticates with the credentials
// file's user and password (the password holds a ':'), signs with the
// [dkim] key (RSA, then Ed25519); the relay refuses the first data with
// 451, and the second attempt sends byte for byte the same message, whose
// signature verifies against the published key.
func TestRelayTLSAuthDKIMRetrySendsSameBytes(t *testing.T) {
	for _, kind := range []string{"rsa", "ed25519"} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			certFile, _, cert := selfSigned(t, dir)
			// The daemon verifies the relay against the system's roots; Go
			// reads them from SSL_CERT_FILE.
			t.Setenv("SSL_CERT_FILE", certFile)
			relay := newTestRelay(t)
			relay.cert, relay.user, relay.pass = &cert, "sg-relay", "s3cret:with:colons"
			relay.refuseData = func(_ string, attempt int) error {
				if attempt == 1 {
					return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Queue full, try later"}
				}
				return nil
			}
			relay.start(t)
			creds := filepath.Join(dir, "relay-credentials")
			if err := os.WriteFile(creds, []byte("sg-relay:s3cret:with:colons\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			p := freePorts(t)
			cfg := relayConfig(t, dir, p, relay.addr, "relay_credentials_file = \""+creds+"\"")
			keyFile, record := dkimKey(t, dir, kind)
			withDKIM(t, cfg, keyFile)
			d := startDaemon(t, dir, p, "-config", cfg)
			submitReply(t, d, "signed-"+kind, "carla@customer.example")
			rows := waitRows(t, dir, cfg, map[string]string{"carla@customer.example": "delivered"})
			time.Sleep(1500 * time.Millisecond) // past the 1s retry: a third try would come now
			tried, got := relay.triedData(), relay.received()
			if len(tried) != 2 || len(got) != 1 || rows[0].Attempts != 2 {
				t.Fatalf("relay got the data %d times and accepted %d, after %d attempts; want 2, 1, 2", len(tried), len(got), rows[0].Attempts)
			}
			for i, m := range tried {
				if !m.TLS || m.User != "sg-relay" {
					t.Errorf("attempt %d: TLS %v, AUTH as %q; want TLS and sg-relay", i+1, m.TLS, m.User)
				}
			}
			if !bytes.Equal(tried[0].Data, tried[1].Data) || tried[0].From != tried[1].From {
				t.Errorf("the retry sent other bytes:\n%s\n---\n%s", tried[0].Data, tried[1].Data)
			}
			if alg := "a=" + kind + "-sha256;"; !bytes.Contains(got[0].Data, []byte(alg)) {
				t.Errorf("the DKIM signature is not %s:\n%s", alg, got[0].Data)
			}
			verifyDKIM(t, got[0].Data, record)
		})
	}
}

// loopback25 returns a 127.0.0.x (x in 2..254) on whose port 25 nothing
// listens now and a listener may be bound: MX hosts are reached on port 25
// (RFC 5321 5.1), and 127.0.0.0/8 is all loopback on Linux. Binding port 25
// needs root (or CAP_NET_BIND_SERVICE): without it the test is skipped,
// or fails under CI=true.
func loopback25(t *testing.T) string {
	t.Helper()
	var err error
	for _, x := range rand.Perm(253) {
		ip := fmt.Sprintf("127.0.0.%d", x+2)
		var l net.Listener
		if l, err = net.Listen("tcp", ip+":25"); err == nil {
			l.Close()
			return ip
		}
		if errors.Is(err, syscall.EACCES) {
			break
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("binding port 25 on loopback: %v (run the tests as root under CI)", err)
	}
	t.Skipf("binding port 25 on loopback: %v", err)
	return ""
}

// newTestRelayAt is a test relay (down until started) on host:25.
func newTestRelayAt(t *testing.T, host string) *testRelay {
	t.Helper()
	r := &testRelay{addr: net.JoinHostPort(host, "25"), tries: map[string]int{}, dataTries: map[string]int{}}
	t.Cleanup(r.stop)
	return r
}

// TestMXDeliveryThroughTheConfiguredResolver: in mx mode the daemon asks
// the [dns] resolver (a DNS server on loopback, which alone knows these
// names) for the MX of each recipient's domain and the addresses of the MX
// hosts: carla@customer.example goes to the MX of preference 20 when the
// one of preference 10 refuses connections; dave@nomx.example, whose
// domain has no MX, to the domain's own A record (RFC 5321 5.1); and
// erin@gone.example, whose domain does not exist, fails at once with an
// event for the team.
func TestMXDeliveryThroughTheConfiguredResolver(t *testing.T) {
	mx := newTestRelayAt(t, loopback25(t))
	mx.start(t)
	implicit := newTestRelayAt(t, loopback25(t))
	implicit.start(t)
	down := loopback25(t) // nothing listens there
	ns := dnstest.New(t)
	ns.MX("customer.example", "down.customer.example", 10)
	ns.MX("customer.example", "mx.customer.example", 20)
	ns.IP("down.customer.example", down)
	ns.IP("mx.customer.example", strings.TrimSuffix(mx.addr, ":25"))
	ns.IP("nomx.example", strings.TrimSuffix(implicit.addr, ":25"))

	dir := t.TempDir()
	p := freePorts(t)
	cfg := testConfig(t, dir, p)
	patchConfig(t, cfg, `mode = "directory"`, "mode = \"mx\"\nretry = [\"1s\"]")
	setResolver(t, cfg, ns.Addr)
	d := startDaemon(t, dir, p, "-config", cfg)
	submitReply(t, d, "mx", "carla@customer.example", "dave@nomx.example", "erin@gone.example")
	waitRows(t, dir, cfg, map[string]string{"carla@customer.example": "delivered", "dave@nomx.example": "delivered",
		"erin@gone.example": "failed"})
	time.Sleep(1500 * time.Millisecond) // past the 1s retry: a second copy would come now
	if got := mx.received(); len(got) != 1 || got[0].To != "carla@customer.example" {
		t.Errorf("the MX of preference 20 received %+v, want carla's copy once", got)
	}
	if got := implicit.received(); len(got) != 1 || got[0].To != "dave@nomx.example" {
		t.Errorf("nomx.example's A host received %+v, want dave's copy once", got)
	}
	failed := eventsOf(t, filepath.Join(dir, "data"), "delivery-failed")
	if len(failed) != 1 {
		t.Fatalf("delivery-failed events %v, want one for erin@gone.example", failed)
	}
	for _, evs := range failed {
		if len(evs) != 1 || !strings.Contains(evs[0], "erin@gone.example") || !strings.Contains(evs[0], "550 5.1.2") {
			t.Errorf("delivery-failed events %q, want one naming erin@gone.example and 550 5.1.2", evs)
		}
	}
}

// TestRelayCAFile: a relay whose certificate comes from a private CA is
// verified against [outbound] relay_ca_file, not the system's roots: with
// the file the reply goes over verified STARTTLS; without it, the same relay
// is not trusted and the reply stays queued with the certificate named in
// its last error (never sent in clear). A CA file that holds no certificate
// stops the daemon at start with a sentence.
func TestRelayCAFile(t *testing.T) {
	dir := t.TempDir()
	certFile, _, cert := selfSigned(t, dir)
	relay := newTestRelay(t)
	relay.cert = &cert
	relay.start(t)

	// Without the CA file: not trusted.
	p := freePorts(t)
	untrusted := relayConfig(t, dir, p, relay.addr, "")
	d := startDaemon(t, dir, p, "-config", untrusted)
	submitReply(t, d, "untrusted", "carla@customer.example")
	deadline := time.Now().Add(20 * time.Second)
	for {
		rows := queueList(t, dir, untrusted)
		if len(rows) == 1 && rows[0].State == "queued" && strings.Contains(rows[0].LastError, "certificate") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("without relay_ca_file: queue %+v, want queued with a certificate error", rows)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := relay.received(); len(got) != 0 {
		t.Fatalf("the relay got %d messages from a daemon that could not verify it", len(got))
	}
	d.stop()

	// With it: delivered over verified TLS, the queued reply included.
	dir2 := t.TempDir()
	p2 := freePorts(t)
	trusted := relayConfig(t, dir2, p2, relay.addr, fmt.Sprintf("relay_ca_file = %q", certFile))
	d2 := startDaemon(t, dir2, p2, "-config", trusted)
	submitReply(t, d2, "trusted", "dave@customer.example")
	waitRows(t, dir2, trusted, map[string]string{"dave@customer.example": "delivered"})
	got := relay.received()
	if len(got) != 1 || !got[0].TLS {
		t.Fatalf("the relay got %+v, want one message over TLS", got)
	}
	d2.stop()

	// A file without a certificate: refused at start.
	bad := filepath.Join(dir2, "not-a-ca.pem")
	if err := os.WriteFile(bad, []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	patchConfig(t, trusted, fmt.Sprintf("relay_ca_file = %q", certFile), fmt.Sprintf("relay_ca_file = %q", bad))
	out, err := exec.Command(daemonBinary(t), "serve", "-config", trusted).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "holds no PEM certificate") {
		t.Fatalf("serve with a bad relay_ca_file: %v\n%s", err, out)
	}
}
