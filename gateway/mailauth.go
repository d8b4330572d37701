package gateway

// Mail authentication on the MX (DESIGN.md §8): SPF (RFC 7208), DKIM
// (RFC 6376) and DMARC with organizational-domain alignment (RFC 7489),
// every lookup through the [dns] resolver with a deadline, the results
// written in an Authentication-Results header (RFC 8601) on the stored copy.

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"blitiri.com.ar/go/spf"
	"github.com/emersion/go-msgauth/authres"
	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-msgauth/dmarc"
	"github.com/emersion/go-smtp"

	"github.com/supportgate/supportgate/policy"
)

const (
	// dnsLookupTimeout bounds each DNS query; mailAuthTimeout all of them.
	dnsLookupTimeout = 4 * time.Second
	mailAuthTimeout  = 20 * time.Second
	// maxDKIMSignatures bounds the signatures verified per message.
	maxDKIMSignatures = 5
)

// errAuthTemporary: a temporary DNS error left SPF or DMARC open in an
// inbox that rejects failures; the sender retries (RFC 7208 8.6).
var errAuthTemporary = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 3},
	Message: "The sender's domain could not be checked because of a temporary DNS failure; please try again later"}

// errAuthFailed is the 550 5.7.1 for a message that fails check.
func errAuthFailed(check string) *smtp.SMTPError {
	msg := "The sender's domain does not authenticate this message: DMARC failed (RFC 7489); this support address refuses such mail"
	if check == "SPF" {
		msg = "The sending server is not allowed by the SPF record of the sender's domain (RFC 7208); this support address refuses such mail"
	}
	return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: msg}
}

// mxClient is what the MX knows of the connection a message came over.
type mxClient struct {
	ip   net.IP
	helo func() string // the EHLO/HELO name, known only after the greeting
	tls  bool          // the message came over TLS (set by mxClientOf)
}

type mxClientKey struct{}

// withMXClient records the SMTP connection in the session's context.
func withMXClient(ctx context.Context, c *smtp.Conn) context.Context {
	var ip net.IP
	if a, ok := c.Conn().RemoteAddr().(*net.TCPAddr); ok {
		ip = a.IP
	}
	return context.WithValue(ctx, mxClientKey{}, mxClient{ip: ip, helo: c.Hostname})
}

// mailAuth is the outcome of the checks on one message.
type mailAuth struct {
	header    string // the Authentication-Results field, CRLF-terminated
	spf       string
	dmarc     string
	dmarcFail bool   // the From address is not authenticated (DESIGN.md §4)
	failing   string // "SPF", "DMARC" or "" (policy.AuthFailure)
}

// checkMailAuth runs SPF on the envelope, DKIM on the signatures and DMARC
// on the From address (fromAddr, "" when unreadable). It never fails: a
// DNS error is a temperror result.
func (s *Server) checkMailAuth(ctx context.Context, mailFrom, fromAddr string, raw []byte) mailAuth {
	ctx, cancel := context.WithTimeout(ctx, mailAuthTimeout)
	defer cancel()
	r := timedResolver{r: s.dnsResolver(), timeout: dnsLookupTimeout}
	lookupTXT := func(name string) ([]string, error) { return r.LookupTXT(ctx, name) }

	client, _ := ctx.Value(mxClientKey{}).(mxClient)
	helo := ""
	if client.helo != nil {
		helo = strings.ToLower(strings.TrimSuffix(client.helo(), "."))
	}

	// SPF (RFC 7208 2.4): MAIL FROM, or postmaster@HELO for a null sender.
	spfSender := mailFrom
	if spfSender == "" && helo != "" {
		spfSender = "postmaster@" + helo
	}
	spfDomain := domainOf(spfSender)
	spfResult := policy.AuthNone
	if client.ip != nil && spfDomain != "" {
		res, _ := spf.CheckHostWithSender(client.ip, helo, spfSender, spf.WithResolver(r), spf.WithContext(ctx))
		spfResult = string(res)
	}

	// DKIM (RFC 6376 6): every signature, up to a bound.
	var dkims []policy.DKIMOutcome
	verifs, err := dkim.VerifyWithOptions(bytes.NewReader(raw), &dkim.VerifyOptions{LookupTXT: lookupTXT, MaxVerifications: maxDKIMSignatures})
	if err == nil || errors.Is(err, dkim.ErrTooManySignatures) {
		for _, v := range verifs {
			res := policy.AuthPass
			switch {
			case v.Err == nil:
			case dkim.IsTempFail(v.Err):
				res = policy.AuthTempError
			case dkim.IsPermFail(v.Err):
				res = policy.AuthPermError
			default:
				res = policy.AuthFail
			}
			dkims = append(dkims, policy.DKIMOutcome{Domain: strings.ToLower(dnsName(v.Domain)), Result: res})
		}
	}

	// DMARC (RFC 7489 6.6.3): the From domain's record, else its
	// organizational domain's.
	in := policy.DMARCInput{FromDomain: domainOf(fromAddr), SPF: spfResult, SPFDomain: spfDomain, DKIM: dkims, Record: policy.AuthNone}
	if in.FromDomain != "" {
		rec, state := lookupDMARC(in.FromDomain, lookupTXT)
		if state == policy.AuthNone {
			if org := policy.OrgDomain(in.FromDomain); org != in.FromDomain {
				rec, state = lookupDMARC(org, lookupTXT)
			}
		}
		in.Record = state
		if rec != nil {
			in.StrictSPF = rec.SPFAlignment == dmarc.AlignmentStrict
			in.StrictDKIM = rec.DKIMAlignment == dmarc.AlignmentStrict
		}
	}
	dmarcResult := policy.DMARCResult(in)

	results := []authres.Result{&authres.SPFResult{Value: authres.ResultValue(spfResult), From: dnsName(mailFrom), Helo: dnsName(helo)}}
	for _, d := range dkims {
		results = append(results, &authres.DKIMResult{Value: authres.ResultValue(d.Result), Domain: d.Domain})
	}
	if len(dkims) == 0 {
		results = append(results, &authres.DKIMResult{Value: authres.ResultNone})
	}
	results = append(results, &authres.DMARCResult{Value: authres.ResultValue(dmarcResult), From: in.FromDomain})
	// One result per line (RFC 5322 2.2.3 folding); the values hold no
	// "; " since dnsName admits no spaces.
	field := strings.ReplaceAll(authres.Format(s.cfg().Server.Hostname, results), "; ", ";\r\n\t")
	return mailAuth{
		header:    "Authentication-Results: " + field + "\r\n",
		spf:       spfResult,
		dmarc:     dmarcResult,
		dmarcFail: dmarcResult == policy.AuthFail,
		failing:   policy.AuthFailure(spfResult, dmarcResult),
	}
}

// lookupDMARC returns the record at _dmarc.domain and the lookup's state:
// policy.AuthPass (found), AuthNone, AuthTempError or AuthPermError.
func lookupDMARC(domain string, lookupTXT func(string) ([]string, error)) (*dmarc.Record, string) {
	rec, err := dmarc.LookupWithOptions(domain, &dmarc.LookupOptions{LookupTXT: lookupTXT})
	switch {
	case err == nil:
		return rec, policy.AuthPass
	case errors.Is(err, dmarc.ErrNoPolicy):
		return nil, policy.AuthNone
	case dmarc.IsTempFail(err):
		return nil, policy.AuthTempError
	}
	return nil, policy.AuthPermError
}

// dnsResolver is the [dns] resolver: the system's, or host:port.
func (s *Server) dnsResolver() *net.Resolver {
	addr := s.cfg().DNS.Resolver
	if addr == "" {
		return net.DefaultResolver
	}
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
}

// timedResolver gives each lookup its own deadline. It satisfies
// spf.DNSResolver. Errors are passed through unwrapped: the libraries tell
// a temporary failure by its *net.DNSError.
type timedResolver struct {
	r       *net.Resolver
	timeout time.Duration
}

func (t timedResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	return t.r.LookupTXT(ctx, name)
}

func (t timedResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	return t.r.LookupMX(ctx, name)
}

func (t timedResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	return t.r.LookupIPAddr(ctx, host)
}

func (t timedResolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	return t.r.LookupAddr(ctx, addr)
}

// domainOf is the lower-cased domain of an address, "" when it is not a
// DNS name.
func domainOf(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return ""
	}
	return strings.ToLower(dnsName(strings.TrimSuffix(addr[i+1:], ".")))
}

// dnsName returns s when it holds only printable ASCII without spaces or
// quotes, else "": nothing from outside reaches the header unchecked.
func dnsName(s string) string {
	if len(s) > 255 {
		return ""
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '"' || c == ';' || c == '(' || c == ')' || c == '\\' {
			return ""
		}
	}
	return s
}

// removeForgedAuthResults returns raw without the Authentication-Results
// fields whose authserv-id is hostname, and how many it removed. RFC 8601 5:
// a border MTA MUST remove (or rename) such fields arriving from outside,
// since only we may speak for our name; a forged "dkim=pass" would otherwise
// look like ours to agents' mail clients. The comparison is
// case-insensitive and ignores a trailing dot, quotes, comments and the
// version (RFC 8601 2.2: authserv-id [CFWS authres-version]). Every other
// byte is kept as it arrived.
func removeForgedAuthResults(raw []byte, hostname string) ([]byte, int) {
	own := strings.TrimSuffix(strings.ToLower(hostname), ".")
	end := headerEnd(raw)
	var out []byte
	removed, start := 0, 0
	for start < end {
		// One field: its first line and the folded lines after it.
		stop := start
		for {
			nl := bytes.IndexByte(raw[stop:end], '\n')
			if nl < 0 {
				stop = end
				break
			}
			stop += nl + 1
			if stop >= end || (raw[stop] != ' ' && raw[stop] != '\t') {
				break
			}
		}
		field := raw[start:stop]
		name, value, ok := bytes.Cut(field, []byte(":"))
		if ok && strings.EqualFold(strings.TrimRight(string(name), " \t"), "Authentication-Results") && authservID(string(value)) == own {
			if out == nil {
				out = append(make([]byte, 0, len(raw)), raw[:start]...)
			}
			removed++
		} else if out != nil {
			out = append(out, field...)
		}
		start = stop
	}
	if out == nil {
		return raw, 0
	}
	return append(out, raw[end:]...), removed
}

// headerEnd returns the length of raw's header section: up to and including
// the line break before the empty line, or all of raw when it has no body.
func headerEnd(raw []byte) int {
	if bytes.HasPrefix(raw, []byte("\r\n")) || bytes.HasPrefix(raw, []byte("\n")) {
		return 0
	}
	for i := 0; i < len(raw); {
		nl := bytes.IndexByte(raw[i:], '\n')
		if nl < 0 {
			return len(raw)
		}
		i += nl + 1
		if bytes.HasPrefix(raw[i:], []byte("\r\n")) || bytes.HasPrefix(raw[i:], []byte("\n")) {
			return i
		}
	}
	return len(raw)
}

// authservID returns the authserv-id of an Authentication-Results value,
// lower-cased and without a trailing dot; "" when there is none.
func authservID(value string) string {
	v := strings.NewReplacer("\r", "", "\n", "").Replace(value)
	v = skipCFWS(v)
	var id string
	if strings.HasPrefix(v, `"`) {
		// RFC 5322 3.2.4 quoted-string (RFC 8601 2.2: authserv-id is a value).
		var b strings.Builder
		for i := 1; i < len(v); i++ {
			switch c := v[i]; c {
			case '\\':
				if i+1 < len(v) {
					i++
					b.WriteByte(v[i])
				}
			case '"':
				i = len(v)
			default:
				b.WriteByte(c)
			}
		}
		id = b.String()
	} else {
		n := strings.IndexAny(v, " \t;(")
		if n < 0 {
			n = len(v)
		}
		id = v[:n]
	}
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(id)), ".")
}

// skipCFWS drops leading white space and (nested) comments.
func skipCFWS(v string) string {
	for {
		v = strings.TrimLeft(v, " \t")
		if !strings.HasPrefix(v, "(") {
			return v
		}
		depth, i := 0, 0
		for ; i < len(v); i++ {
			switch v[i] {
			case '\\':
				i++
			case '(':
				depth++
			case ')':
				depth--
			}
			if depth == 0 {
				break
			}
		}
		if i >= len(v) {
			return ""
		}
		v = v[i+1:]
	}
}
