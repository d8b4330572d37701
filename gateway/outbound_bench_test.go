package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"golang.org/x/crypto/bcrypt"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/queue"
)

// BenchmarkOutbound is bench/run's outbound section in one process, for
// profiles (go test -bench Outbound -cpuprofile): 1,000 replies of 4 KiB
// submitted by an agent from 10 sessions into one conversation, rewritten,
// DKIM-signed (RSA-2048), recorded and queued, and delivered by the queue
// worker through a relay to a sink that takes everything. The clock runs
// from the first submission to the last delivery at the sink.
func BenchmarkOutbound(b *testing.B) {
	const replies, sessions = 1000, 10
	keyFile := filepath.Join(b.TempDir(), "dkim.pem")
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := os.WriteFile(keyFile, pemKey, 0o600); err != nil {
		b.Fatal(err)
	}
	// bench/run's agent password is hashed at bcrypt's lowest cost: the
	// logins are not what is measured.
	hash, err := bcrypt.GenerateFromPassword([]byte("bench"), bcrypt.MinCost)
	if err != nil {
		b.Fatal(err)
	}
	for range b.N {
		b.StopTimer()
		ts := newTestServer(b, nil, func(c *config.Config) {
			for i := range c.Agents {
				if c.Agents[i].Email == "alice@example.test" {
					c.Agents[i].PasswordHash = string(hash)
				}
			}
			c.DKIM.Selector, c.DKIM.PrivateKeyFile = "sg1", keyFile
			c.Limits.MaxConnectionsPerIP = 1000
			c.Limits.MaxMessagesPerSenderPerHour = 1_000_000
		})
		if err := smtpSend(ts.mx, nil, "gina@customer.example", []string{"support@example.test"}, customerMail("gina-1@customer.example", "Printer")); err != nil {
			b.Fatal(err)
		}
		sink := startSink(b, replies)
		// The store's commits (each one fsync), counted and timed: the
		// writer is the store's one serial section.
		var commits, commitNanos atomic.Int64
		if o, ok := ts.store.(interface{ ObserveCommits(func(time.Duration)) }); ok {
			o.ObserveCommits(func(d time.Duration) { commits.Add(1); commitNanos.Add(int64(d)) })
		}
		w := &queue.Worker{Store: ts.store, Transport: &queue.RelayTransport{Hostname: "sg.test", Relay: sink.addr}, Keys: ts.srv.keys,
			Retry: []time.Duration{time.Minute}, GiveUpAfter: time.Hour, Log: slog.New(slog.DiscardHandler)}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		b.StartTimer()
		start := time.Now()
		var next atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, sessions)
		for range sessions {
			wg.Go(func() {
				c, err := smtp.Dial(ts.submission)
				if err != nil {
					errs <- err
					return
				}
				defer c.Close()
				if err := c.Auth(sasl.NewPlainClient("", "alice@example.test", "bench")); err != nil {
					errs <- err
					return
				}
				for i := next.Add(1); i <= replies; i = next.Add(1) {
					if err := c.SendMail("alice@example.test", []string{"gina@customer.example"}, bytes.NewReader(benchReply(i))); err != nil {
						errs <- fmt.Errorf("reply %d: %w", i, err)
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
		select {
		case <-sink.full:
		case <-time.After(2 * time.Minute):
			b.Fatalf("the sink got %d of %d replies", sink.n.Load(), replies)
		}
		took := time.Since(start)
		b.ReportMetric(replies/took.Seconds(), "replies/s")
		b.ReportMetric(float64(commits.Load())/replies, "commits/reply")
		b.ReportMetric(float64(commitNanos.Load())/float64(took), "writer-busy")
		b.StopTimer()
		cancel()
		<-done
	}
}

// benchReply is reply i as sgbench submit writes it: 4 KiB, answering the
// customer's message.
func benchReply(i int64) []byte {
	var m bytes.Buffer
	fmt.Fprintf(&m, "From: <alice@example.test>\r\nTo: <gina@customer.example>\r\nSubject: Re: Printer\r\nMessage-ID: <reply%d@agent.example>\r\n", i)
	m.WriteString("In-Reply-To: <gina-1@customer.example>\r\nReferences: <gina-1@customer.example>\r\n")
	m.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n")
	for m.Len() < 4096 {
		m.WriteString("Please unplug the printer and wait for the fire brigade to arrive.\r\n")
	}
	return m.Bytes()
}

// sink is an SMTP server that takes every message and counts them; full is
// closed at the want-th.
type sink struct {
	addr string
	n    atomic.Int64
	full chan struct{}
}

func startSink(t testing.TB, want int64) *sink {
	t.Helper()
	s := &sink{full: make(chan struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &sinkSession{s: s, want: want}, nil
	}))
	srv.Domain = "sink.test"
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

type sinkSession struct {
	s    *sink
	want int64
}

func (*sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (*sinkSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (*sinkSession) Reset()                               {}
func (*sinkSession) Logout() error                        { return nil }

func (x *sinkSession) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	if x.s.n.Add(1) == x.want {
		close(x.s.full)
	}
	return nil
}
