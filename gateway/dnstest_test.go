package gateway

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// testDNS is an authoritative-looking DNS server on loopback, over UDP and
// TCP on the same port, answering TXT queries from a table. A name in
// servfail gets SERVFAIL (a temporary error); a missing name NXDOMAIN.
type testDNS struct {
	Addr string

	mu       sync.Mutex
	txt      map[string][]string // lower-case FQDN without the final dot
	servfail map[string]bool
}

func newTestDNS(t *testing.T) *testDNS {
	t.Helper()
	d := &testDNS{txt: map[string][]string{}, servfail: map[string]bool{}}
	var (
		pc  net.PacketConn
		l   net.Listener
		err error
	)
	for range 20 { // the TCP port may be taken by someone else: try another
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
	}
	if err != nil {
		t.Fatalf("no UDP+TCP port pair on loopback: %v", err)
	}
	d.Addr = pc.LocalAddr().String()
	udp := &dns.Server{PacketConn: pc, Handler: d}
	tcp := &dns.Server{Listener: l, Handler: d}
	go udp.ActivateAndServe()
	go tcp.ActivateAndServe()
	t.Cleanup(func() {
		udp.Shutdown()
		tcp.Shutdown()
	})
	return d
}

// TXT publishes the records of name, replacing any.
func (d *testDNS) TXT(name string, records ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.txt[strings.ToLower(name)] = records
}

// ServFail makes name answer SERVFAIL.
func (d *testDNS) ServFail(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.servfail[strings.ToLower(name)] = true
}

func (d *testDNS) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := strings.ToLower(strings.TrimSuffix(q.Name, "."))
	d.mu.Lock()
	records, found := d.txt[name]
	fail := d.servfail[name]
	d.mu.Unlock()
	switch {
	case fail:
		m.Rcode = dns.RcodeServerFailure
	case !found:
		m.Rcode = dns.RcodeNameError
	case q.Qtype == dns.TypeTXT:
		for _, r := range records {
			// A TXT string holds at most 255 bytes (RFC 1035 3.3.14): split long records.
			var parts []string
			for len(r) > 255 {
				parts, r = append(parts, r[:255]), r[255:]
			}
			m.Answer = append(m.Answer, &dns.TXT{
				Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60},
				Txt: append(parts, r),
			})
		}
	}
	w.WriteMsg(m)
}

// TestTestDNS: the helper answers over both transports, so the resolver
// may fall back to TCP for large answers.
func TestTestDNS(t *testing.T) {
	d := newTestDNS(t)
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
