package dnstest

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestTransports: the server answers over both transports, so a resolver
// may fall back to TCP for large answers.
func TestTransports(t *testing.T) {
	d := New(t)
	d.TXT("x.example", strings.Repeat("a", 300))
	for _, network := range []string{"udp", "tcp"} {
		c := &dns.Client{Net: network, Timeout: 2 * time.Second}
		m := new(dns.Msg)
		m.SetQuestion("x.example.", dns.TypeTXT)
		r, _, err := c.Exchange(m, d.Addr)
		if err != nil || len(r.Answer) != 1 || strings.Join(r.Answer[0].(*dns.TXT).Txt, "") != strings.Repeat("a", 300) {
			t.Errorf("%s: %v %v", network, r, err)
		}
	}
}

// TestGoResolver: Go's resolver pointed at the server sees MX, A, AAAA,
// NODATA, NXDOMAIN and SERVFAIL as a real zone would give them.
func TestGoResolver(t *testing.T) {
	d := New(t)
	d.MX("customer.example", "mx2.customer.example", 20)
	d.MX("customer.example", "mx1.customer.example", 10)
	d.IP("mx1.customer.example", "127.0.0.2", "::1")
	d.ServFail("broken.example")
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, network, d.Addr)
	}}
	ctx := context.Background()
	mxs, err := r.LookupMX(ctx, "customer.example")
	if err != nil || len(mxs) != 2 || mxs[0].Host != "mx1.customer.example." || mxs[1].Pref != 20 {
		t.Errorf("LookupMX = %v, %v", mxs, err)
	}
	ips, err := r.LookupHost(ctx, "mx1.customer.example")
	if err != nil || len(ips) != 2 {
		t.Errorf("LookupHost = %v, %v", ips, err)
	}
	var dnsErr *net.DNSError
	if _, err := r.LookupMX(ctx, "mx1.customer.example"); !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Errorf("MX of a name without MX: %v, want not found", err)
	}
	if _, err := r.LookupHost(ctx, "nowhere.example"); !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Errorf("a missing name: %v, want not found", err)
	}
	if _, err := r.LookupMX(ctx, "broken.example"); !errors.As(err, &dnsErr) || dnsErr.IsNotFound {
		t.Errorf("SERVFAIL: %v, want a temporary error", err)
	}
}
