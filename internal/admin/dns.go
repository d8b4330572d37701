package admin

import (
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/supportgate/supportgate/config"
)

// recordTTL is the TTL of the records Records prints.
const recordTTL = 3600

// Records returns, in zone-file syntax (RFC 1035 5), the DNS records to
// publish for a configuration (DESIGN.md §11): the server's address
// records and an SPF record for its HELO name, then for every inbox
// domain its MX, SPF, the DKIM TXT record of the configured key, and
// DMARC, and last the PTR records to ask the address's provider for. ips
// are the server's public addresses; without them, the listen addresses
// that are public IPs are used, else the address records are comments to
// fill in. The error is about the DKIM key: the text is complete but for
// that record, which is a comment saying why.
func Records(cfg *config.Config, ips []net.IP) (string, error) {
	host := dns.Fqdn(strings.ToLower(cfg.Server.Hostname))
	if len(ips) == 0 {
		ips = publicListenIPs(cfg)
	}
	var b strings.Builder
	rr := func(name, typ, data string) {
		fmt.Fprintf(&b, "%s\t%d\tIN\t%s\t%s\n", name, recordTTL, typ, data)
	}
	fmt.Fprintf(&b, "; DNS records for supportgate on %s (printed by `supportgate dns`, from %s).\n", host, cfg.Source)
	fmt.Fprintf(&b, "; Publish them at the DNS provider of each domain.\n\n")

	fmt.Fprintf(&b, "; The server: server.hostname, where the MX records point; its HELO name.\n")
	if len(ips) == 0 {
		fmt.Fprintf(&b, "; %s\t%d\tIN\tA\t<the server's public IPv4 address> (or run supportgate dns -ip ADDRESS)\n", host, recordTTL)
		fmt.Fprintf(&b, "; %s\t%d\tIN\tAAAA\t<its public IPv6 address, if it has one>\n", host, recordTTL)
	}
	for _, ip := range ips {
		if ip.To4() != nil {
			rr(host, "A", ip.To4().String())
		} else {
			rr(host, "AAAA", ip.String())
		}
	}
	rr(host, "TXT", quoteTXT("v=spf1 a -all"))

	var dkimRecord string
	var dkimErr error
	if cfg.DKIM.PrivateKeyFile != "" {
		dkimRecord, dkimErr = DKIMRecordOfFile(cfg.DKIM.PrivateKeyFile)
	}
	for _, d := range inboxDomains(cfg) {
		zone := dns.Fqdn(d.domain)
		fmt.Fprintf(&b, "\n; %s: inboxes %s.\n", d.domain, strings.Join(d.inboxes, ", "))
		rr(zone, "MX", "10 "+host)
		switch cfg.Outbound.Mode {
		case "relay":
			fmt.Fprintf(&b, "; Replies leave through the relay %s: add its SPF mechanism to this record (ask the provider, e.g. include:...).\n", cfg.Outbound.Relay)
		case "directory":
			fmt.Fprintf(&b, "; outbound.mode is \"directory\": nothing is sent yet; the record is for when replies go to the recipients' MX (mode = \"mx\").\n")
		}
		rr(zone, "TXT", quoteTXT("v=spf1 mx -all"))
		switch {
		case cfg.DKIM.PrivateKeyFile == "":
			fmt.Fprintf(&b, "; No [dkim]: replies are not signed. Make a key with `supportgate dkim-keygen /etc/supportgate/dkim.pem`,\n")
			fmt.Fprintf(&b, "; set [dkim] selector and private_key_file, and run supportgate dns again for its record.\n")
		case dkimErr != nil:
			fmt.Fprintf(&b, "; The DKIM record of [dkim] private_key_file cannot be made: %s\n", strings.ReplaceAll(dkimErr.Error(), "\n", " "))
		default:
			rr(dns.Fqdn(cfg.DKIM.Selector+"._domainkey."+d.domain), "TXT", quoteTXT(dkimRecord))
		}
		fmt.Fprintf(&b, "; DMARC: receivers quarantine mail that claims this domain without passing SPF or DKIM; add\n")
		fmt.Fprintf(&b, "; rua=mailto:<an address that is not an inbox> for aggregate reports.\n")
		rr("_dmarc."+zone, "TXT", quoteTXT("v=DMARC1; p=quarantine; adkim=r; aspf=r"))
	}

	fmt.Fprintf(&b, "\n; Reverse DNS: ask the provider of each address of the server for this PTR record (receivers check\n")
	fmt.Fprintf(&b, "; that the address and %s name each other).\n", host)
	if len(ips) == 0 {
		fmt.Fprintf(&b, "; <the address, reversed>.in-addr.arpa.\t%d\tIN\tPTR\t%s\n", recordTTL, host)
	}
	for _, ip := range ips {
		rev, err := dns.ReverseAddr(ip.String())
		if err != nil {
			continue
		}
		rr(rev, "PTR", host)
	}
	if dkimErr != nil {
		return b.String(), cfg.KeyError("dkim.private_key_file", "dkim.private_key_file: "+dkimErr.Error())
	}
	return b.String(), nil
}

type inboxDomain struct {
	domain  string
	inboxes []string
}

// inboxDomains returns the domains of the inboxes, in the order of their
// first inbox.
func inboxDomains(cfg *config.Config) []inboxDomain {
	var out []inboxDomain
	for _, in := range cfg.Inboxes {
		_, d, _ := strings.Cut(in.Address, "@")
		i := slices.IndexFunc(out, func(x inboxDomain) bool { return x.domain == d })
		if i < 0 {
			out = append(out, inboxDomain{domain: d})
			i = len(out) - 1
		}
		out[i].inboxes = append(out[i].inboxes, in.Address)
	}
	return out
}

// publicListenIPs returns the distinct global unicast IPs the server's
// listen addresses name.
func publicListenIPs(cfg *config.Config) []net.IP {
	var out []net.IP
	for _, l := range []string{cfg.Server.MXListen, cfg.Server.SubmissionListen, cfg.Server.SubmissionsListen,
		cfg.Server.IMAPListen, cfg.Server.IMAPSListen} {
		host, _, err := net.SplitHostPort(l)
		if err != nil {
			continue
		}
		ip := net.ParseIP(host)
		if ip == nil || !ip.IsGlobalUnicast() || ip.IsPrivate() {
			continue
		}
		if !slices.ContainsFunc(out, ip.Equal) {
			out = append(out, ip)
		}
	}
	return out
}

// quoteTXT writes s as the data of a TXT record: one quoted string, or,
// when it is longer than a DNS character-string may be (255 bytes), a
// parenthesised list of them, which resolvers join again.
func quoteTXT(s string) string {
	const max = 255
	if len(s) <= max {
		return `"` + s + `"`
	}
	var parts []string
	for len(s) > 0 {
		n := min(len(s), max)
		parts = append(parts, `"`+s[:n]+`"`)
		s = s[n:]
	}
	return "( " + strings.Join(parts, " ") + " )"
}
