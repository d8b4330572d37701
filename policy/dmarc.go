package policy

import (
	"strings"

	"golang.org/x/net/publicsuffix"

	"github.com/supportgate/supportgate/config"
)

// Results of the mail-authentication checks, as Authentication-Results
// writes them (RFC 8601 2.7).
const (
	AuthNone      = "none"
	AuthPass      = "pass"
	AuthFail      = "fail"
	AuthSoftFail  = "softfail"
	AuthNeutral   = "neutral"
	AuthTempError = "temperror"
	AuthPermError = "permerror"
)

// OrgDomain is the organizational domain of a domain (RFC 7489 3.2): one
// label below its public suffix. A domain that is itself a public suffix,
// or that the list cannot place, is its own organizational domain.
func OrgDomain(domain string) string {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	org, err := publicsuffix.EffectiveTLDPlusOne(domain)
	if err != nil {
		return domain
	}
	return org
}

// Aligned reports whether an authenticated domain is aligned with the
// From domain (RFC 7489 3.1): the same name when strict, the same
// organizational domain when relaxed.
func Aligned(authenticated, from string, strict bool) bool {
	a := strings.ToLower(strings.TrimSuffix(authenticated, "."))
	f := strings.ToLower(strings.TrimSuffix(from, "."))
	if a == "" || f == "" {
		return false
	}
	if strict {
		return a == f
	}
	return OrgDomain(a) == OrgDomain(f)
}

// DKIMOutcome is one DKIM signature's result (RFC 6376 6.1) and its d= domain.
type DKIMOutcome struct {
	Domain string
	Result string // AuthPass, AuthFail, AuthPermError, AuthTempError
}

// DMARCInput is what the DMARC evaluation (RFC 7489 4.2) needs.
type DMARCInput struct {
	FromDomain string // the RFC 5322.From domain
	Record     string // AuthPass: a record was found; AuthNone: none; AuthTempError; AuthPermError
	StrictSPF  bool   // aspf=s
	StrictDKIM bool   // adkim=s
	SPF        string // the SPF result
	SPFDomain  string // the domain SPF checked: MAIL FROM's, or HELO's for a null sender
	DKIM       []DKIMOutcome
}

// DMARCResult evaluates DMARC (RFC 7489 4.2): pass when an authenticated
// identifier aligns with From; temperror when none does but one might have
// after a temporary DNS error; fail otherwise; none without a record.
func DMARCResult(in DMARCInput) string {
	switch in.Record {
	case AuthNone, AuthTempError, AuthPermError:
		return in.Record
	}
	temp := false
	if Aligned(in.SPFDomain, in.FromDomain, in.StrictSPF) {
		switch in.SPF {
		case AuthPass:
			return AuthPass
		case AuthTempError:
			temp = true
		}
	}
	for _, d := range in.DKIM {
		if !Aligned(d.Domain, in.FromDomain, in.StrictDKIM) {
			continue
		}
		switch d.Result {
		case AuthPass:
			return AuthPass
		case AuthTempError:
			temp = true
		}
	}
	if temp {
		return AuthTempError
	}
	return AuthFail
}

// AuthAction is what the MX does with a message after the checks.
type AuthAction int

const (
	AuthDeliver    AuthAction = iota // store it as usual
	AuthFlag                         // store it with a team-only event
	AuthQuarantine                   // store it; a conversation it starts goes to Spam
	AuthReject                       // refuse it: 550 5.7.1
	AuthDefer                        // refuse it for now: 451, the sender retries
)

// AuthFailure names the check that failed, "" when none did. A message
// fails when DMARC fails (RFC 7489 6.6.2) or, when the From domain has no
// usable DMARC record, when SPF fails (RFC 7208 8.4). A DMARC pass
// outweighs an SPF failure (a forwarder, with an aligned DKIM signature),
// and a DKIM signature that does not verify is not a failure by itself:
// the message is treated as unsigned (RFC 6376 6.1).
func AuthFailure(spf, dmarc string) string {
	switch {
	case dmarc == AuthFail:
		return "DMARC"
	case spf == AuthFail && (dmarc == AuthNone || dmarc == AuthPermError):
		return "SPF"
	}
	return ""
}

// AuthTemporary reports whether a temporary DNS error left the outcome
// open: DMARC is temperror, or SPF is and no DMARC record decides.
func AuthTemporary(spf, dmarc string) bool {
	return dmarc == AuthTempError || spf == AuthTempError && (dmarc == AuthNone || dmarc == AuthPermError)
}

// DecideAuth applies an inbox's auth_failure to the checks' outcome. A
// temporary error never loses mail: it is delivered as usual, except that
// an inbox that rejects failures defers it (451) until the answer is known.
func DecideAuth(policy, failing string, temporary bool) AuthAction {
	if failing == "" {
		if temporary && policy == config.AuthFailureReject {
			return AuthDefer
		}
		return AuthDeliver
	}
	switch policy {
	case config.AuthFailureAccept:
		return AuthDeliver
	case config.AuthFailureQuarantine:
		return AuthQuarantine
	case config.AuthFailureReject:
		return AuthReject
	}
	return AuthFlag
}
