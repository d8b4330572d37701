package admin

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/miekg/dns"

	"github.com/supportgate/supportgate/internal/dkimsign"
)

// verifyRecord signs a message with the key in keyFile and verifies the
// signature against record, published at sg1._domainkey.<domain>, with
// go-msgauth's verifier.
func verifyRecord(t *testing.T, keyFile, domain, record string) {
	t.Helper()
	signer, err := dkimsign.Load("sg1", keyFile)
	if err != nil {
		t.Fatal(err)
	}
	msg := "From: Support <support@" + domain + ">\r\nTo: carla@customer.example\r\nSubject: Re: printer\r\n" +
		"Date: Sat, 21 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@" + domain + ">\r\n\r\nIt works.\r\n"
	signed, err := signer.Sign([]byte(msg), domain)
	if err != nil {
		t.Fatal(err)
	}
	name := "sg1._domainkey." + domain
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(signed), &dkim.VerifyOptions{LookupTXT: func(d string) ([]string, error) {
		if d != name {
			return nil, fmt.Errorf("no TXT record at %s", d)
		}
		return []string{record}, nil
	}})
	if err != nil || len(vs) != 1 || vs[0].Err != nil || vs[0].Domain != domain {
		var verr error
		if len(vs) == 1 {
			verr = vs[0].Err
		}
		t.Fatalf("the signature does not verify against %q: %v, %v", record, err, verr)
	}
}

func TestGenerateDKIMKey(t *testing.T) {
	dir := t.TempDir()
	for _, kind := range []string{"rsa", "ed25519"} {
		t.Run(kind, func(t *testing.T) {
			file := filepath.Join(dir, kind+".pem")
			record, err := GenerateDKIMKey(kind, file)
			if err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(file)
			if err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("the key file: %v, mode %v; want 0600", err, st.Mode())
			}
			if !strings.HasPrefix(record, "v=DKIM1; k="+kind+"; p=") {
				t.Errorf("record %q", record)
			}
			verifyRecord(t, file, "example.test", record)
			if again, err := DKIMRecordOfFile(file); err != nil || again != record {
				t.Errorf("DKIMRecordOfFile: %q, %v; want %q", again, err, record)
			}
			before, _ := os.ReadFile(file)
			if _, err := GenerateDKIMKey(kind, file); err == nil || !strings.Contains(err.Error(), "never overwrites") {
				t.Errorf("a second GenerateDKIMKey into the same file: %v; want a refusal", err)
			}
			if after, _ := os.ReadFile(file); !bytes.Equal(before, after) {
				t.Error("the refused GenerateDKIMKey changed the key file")
			}
		})
	}
	if _, err := GenerateDKIMKey("dsa", filepath.Join(dir, "dsa.pem")); err == nil {
		t.Error("GenerateDKIMKey of type dsa succeeded")
	}
}

// TestRecords parses the output of `supportgate dns` as a zone file and
// checks every record: the server's address and HELO SPF, per inbox
// domain MX, SPF, DKIM (which verifies a signature made with the
// configured key) and DMARC, and the PTR of each address.
func TestRecords(t *testing.T) {
	f := newTestFiles(t)
	doc := fullConfig(f, true) + `
[[inbox]]
address = "billing@example.test"

[[inbox]]
address = "help@other.example"
`
	cfg, _ := loadDoc(t, f.dir, doc)
	out, err := Records(cfg, []net.IP{net.ParseIP("203.0.113.7"), net.ParseIP("2001:db8::7")})
	if err != nil {
		t.Fatalf("Records: %v", err)
	}
	t.Logf("supportgate dns:\n%s", out)
	got := map[string][]dns.RR{} // "name TYPE" -> records
	zp := dns.NewZoneParser(strings.NewReader(out), ".", "dns-output")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		h := rr.Header()
		if h.Class != dns.ClassINET || h.Ttl != recordTTL {
			t.Errorf("%s: class %d, TTL %d", rr, h.Class, h.Ttl)
		}
		k := strings.ToLower(h.Name) + " " + dns.TypeToString[h.Rrtype]
		got[k] = append(got[k], rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatalf("the output is not a zone file: %v", err)
	}
	one := func(name, typ string) dns.RR {
		t.Helper()
		rrs := got[name+" "+typ]
		if len(rrs) != 1 {
			t.Fatalf("%d %s records at %s; want 1", len(rrs), typ, name)
		}
		return rrs[0]
	}
	txt := func(name string) string { t.Helper(); return strings.Join(one(name, "TXT").(*dns.TXT).Txt, "") }

	if a := one("mail.example.test.", "A").(*dns.A); !a.A.Equal(net.ParseIP("203.0.113.7")) {
		t.Errorf("A: %s", a)
	}
	if a := one("mail.example.test.", "AAAA").(*dns.AAAA); !a.AAAA.Equal(net.ParseIP("2001:db8::7")) {
		t.Errorf("AAAA: %s", a)
	}
	if s := txt("mail.example.test."); s != "v=spf1 a -all" {
		t.Errorf("SPF of the HELO name: %q", s)
	}
	record, err := DKIMRecordOfFile(f.dkim)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"example.test", "other.example"} {
		mx := one(d+".", "MX").(*dns.MX)
		if mx.Mx != "mail.example.test." || mx.Preference != 10 {
			t.Errorf("MX of %s: %s", d, mx)
		}
		if s := txt(d + "."); s != "v=spf1 mx -all" {
			t.Errorf("SPF of %s: %q", d, s)
		}
		dk := txt("sg1._domainkey." + d + ".")
		if dk != record {
			t.Errorf("DKIM of %s: %q; want %q", d, dk, record)
		}
		verifyRecord(t, f.dkim, d, dk)
		if s := txt("_dmarc." + d + "."); !strings.HasPrefix(s, "v=DMARC1; p=quarantine") {
			t.Errorf("DMARC of %s: %q", d, s)
		}
	}
	if ptr := one("7.113.0.203.in-addr.arpa.", "PTR").(*dns.PTR); ptr.Ptr != "mail.example.test." {
		t.Errorf("PTR: %s", ptr)
	}
	rev, _ := dns.ReverseAddr("2001:db8::7")
	if ptr := one(rev, "PTR").(*dns.PTR); ptr.Ptr != "mail.example.test." {
		t.Errorf("PTR v6: %s", ptr)
	}
	if !strings.Contains(out, "relay smtp.provider.example:587") {
		t.Error("the output does not say that the relay's SPF mechanism is to be added")
	}
	var names []string
	for k := range got {
		names = append(names, k)
	}
	slices.Sort(names)
	if len(names) != 3+2*4+2 {
		t.Errorf("records: %q", names)
	}
}

// TestRecordsRSA: a 2048-bit RSA record is longer than a DNS string and
// is written as several, which resolvers join into what verifies.
func TestRecordsRSA(t *testing.T) {
	f := newTestFiles(t)
	rsaFile := filepath.Join(f.dir, "rsa.pem")
	record, err := GenerateDKIMKey("rsa", rsaFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := loadDoc(t, f.dir, strings.Replace(fullConfig(f, true), f.dkim, rsaFile, 1))
	out, err := Records(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	zp := dns.NewZoneParser(strings.NewReader(out), ".", "dns-output")
	found := false
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if txt, ok := rr.(*dns.TXT); ok && txt.Hdr.Name == "sg1._domainkey.example.test." {
			found = true
			if len(txt.Txt) < 2 || strings.Join(txt.Txt, "") != record {
				t.Errorf("DKIM TXT strings %q; want %q split", txt.Txt, record)
			}
			verifyRecord(t, rsaFile, "example.test", strings.Join(txt.Txt, ""))
		}
		if rr.Header().Rrtype == dns.TypeA || rr.Header().Rrtype == dns.TypePTR {
			t.Errorf("without -ip and with no public listen address: %s", rr)
		}
	}
	if err := zp.Err(); err != nil || !found {
		t.Fatalf("zone: %v, DKIM record found: %v\n%s", err, found, out)
	}
	if !strings.Contains(out, "<the server's public IPv4 address>") {
		t.Errorf("without addresses the A record is not left to fill in:\n%s", out)
	}

	// A broken key: the rest is printed, the error names the line.
	cfg, path := loadDoc(t, f.dir, strings.Replace(fullConfig(f, true), f.dkim, f.dkimCert, 1))
	out, err = Records(cfg, nil)
	if err == nil || !strings.HasPrefix(err.Error(), fmt.Sprintf("%s:%d: ", path, lineOf(t, fullConfig(f, true), "private_key_file"))) ||
		!strings.Contains(out, "example.test.\t3600\tIN\tMX") {
		t.Errorf("Records with a certificate as DKIM key: %v\n%s", err, out)
	}
}
