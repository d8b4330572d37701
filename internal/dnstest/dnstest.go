// Package dnstest is a DNS server on loopback for tests: it answers TXT,
// MX, A and AAAA queries from a table, over UDP and TCP on one port, so
// that code configured with a resolver address ([dns] resolver) can be
// tested without the network.
package dnstest

import (
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// Server is an authoritative-looking DNS server on 127.0.0.1. A name in the
// table answers its records of the asked type (none: NODATA); a name marked
// ServFail answers SERVFAIL (a temporary error); any other name NXDOMAIN.
type Server struct {
	Addr string // host:port, for UDP and TCP

	mu       sync.Mutex
	names    map[string]bool // lower-case FQDN without the final dot
	txt      map[string][]string
	mx       map[string][]*net.MX
	ips      map[string][]net.IP
	servfail map[string]bool
}

// New starts a server that stops when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{names: map[string]bool{}, txt: map[string][]string{}, mx: map[string][]*net.MX{},
		ips: map[string][]net.IP{}, servfail: map[string]bool{}}
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
	s.Addr = pc.LocalAddr().String()
	udp := &dns.Server{PacketConn: pc, Handler: s}
	tcp := &dns.Server{Listener: l, Handler: s}
	go udp.ActivateAndServe()
	go tcp.ActivateAndServe()
	t.Cleanup(func() {
		udp.Shutdown()
		tcp.Shutdown()
	})
	return s
}

func key(name string) string { return strings.ToLower(strings.TrimSuffix(name, ".")) }

// TXT publishes the TXT records of name, replacing any.
func (s *Server) TXT(name string, records ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.names[key(name)] = true
	s.txt[key(name)] = records
}

// MX adds an MX record of name: host (without the final dot; "" or "." is
// a null MX, RFC 7505) at preference pref.
func (s *Server) MX(name, host string, pref uint16) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.names[key(name)] = true
	s.mx[key(name)] = append(s.mx[key(name)], &net.MX{Host: host, Pref: pref})
}

// IP adds A (IPv4) or AAAA (IPv6) records of name.
func (s *Server) IP(name string, ips ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.names[key(name)] = true
	for _, ip := range ips {
		s.ips[key(name)] = append(s.ips[key(name)], net.ParseIP(ip))
	}
}

// ServFail makes name answer SERVFAIL.
func (s *Server) ServFail(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.servfail[key(name)] = true
}

// ServeDNS implements dns.Handler.
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := key(q.Name)
	hdr := func(typ uint16) dns.RR_Header {
		return dns.RR_Header{Name: q.Name, Rrtype: typ, Class: dns.ClassINET, Ttl: 60}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.servfail[name]:
		m.Rcode = dns.RcodeServerFailure
	case !s.names[name]:
		m.Rcode = dns.RcodeNameError
	case q.Qtype == dns.TypeTXT:
		for _, r := range s.txt[name] {
			// A TXT string holds at most 255 bytes (RFC 1035 3.3.14): split long records.
			var parts []string
			for len(r) > 255 {
				parts, r = append(parts, r[:255]), r[255:]
			}
			m.Answer = append(m.Answer, &dns.TXT{Hdr: hdr(dns.TypeTXT), Txt: append(parts, r)})
		}
	case q.Qtype == dns.TypeMX:
		for _, mx := range s.mx[name] {
			m.Answer = append(m.Answer, &dns.MX{Hdr: hdr(dns.TypeMX), Preference: mx.Pref, Mx: dns.Fqdn(mx.Host)})
		}
	case q.Qtype == dns.TypeA:
		for _, ip := range s.ips[name] {
			if ip4 := ip.To4(); ip4 != nil {
				m.Answer = append(m.Answer, &dns.A{Hdr: hdr(dns.TypeA), A: ip4})
			}
		}
	case q.Qtype == dns.TypeAAAA:
		for _, ip := range s.ips[name] {
			if ip.To4() == nil {
				m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr(dns.TypeAAAA), AAAA: ip})
			}
		}
	}
	w.WriteMsg(m)
}
