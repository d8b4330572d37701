package policy

import (
	"testing"

	"github.com/supportgate/supportgate/config"
)

func TestOrgDomainAndAlignment(t *testing.T) {
	for in, want := range map[string]string{
		"mail.customer.example": "customer.example", "customer.example": "customer.example",
		"a.b.example.co.uk": "example.co.uk", "Mail.Example.COM.": "example.com", "co.uk": "co.uk",
	} {
		if got := OrgDomain(in); got != want {
			t.Errorf("OrgDomain(%q) = %q, want %q", in, got, want)
		}
	}
	tests := []struct {
		auth, from string
		strict     bool
		want       bool
	}{
		{"customer.example", "customer.example", true, true},
		{"mail.customer.example", "customer.example", false, true},
		{"mail.customer.example", "customer.example", true, false},
		{"customer.example", "sub.customer.example", false, true},
		{"a.example.co.uk", "b.example.co.uk", false, true},
		{"evil.co.uk", "example.co.uk", false, false}, // a public suffix is no common organization
		{"other.example", "customer.example", false, false},
		{"", "customer.example", false, false},
	}
	for _, tt := range tests {
		if got := Aligned(tt.auth, tt.from, tt.strict); got != tt.want {
			t.Errorf("Aligned(%q, %q, strict=%v) = %v", tt.auth, tt.from, tt.strict, got)
		}
	}
}

func TestDMARCResult(t *testing.T) {
	base := DMARCInput{FromDomain: "customer.example", Record: AuthPass}
	with := func(f func(*DMARCInput)) DMARCInput { in := base; f(&in); return in }
	tests := []struct {
		name string
		in   DMARCInput
		want string
	}{
		{"no record", with(func(in *DMARCInput) { in.Record = AuthNone; in.SPF = AuthFail }), AuthNone},
		{"record lookup temperror", with(func(in *DMARCInput) { in.Record = AuthTempError }), AuthTempError},
		{"nothing authenticated", base, AuthFail},
		{"aligned SPF", with(func(in *DMARCInput) { in.SPF, in.SPFDomain = AuthPass, "customer.example" }), AuthPass},
		{"relaxed SPF", with(func(in *DMARCInput) { in.SPF, in.SPFDomain = AuthPass, "bounce.customer.example" }), AuthPass},
		{"strict SPF", with(func(in *DMARCInput) {
			in.SPF, in.SPFDomain, in.StrictSPF = AuthPass, "bounce.customer.example", true
		}), AuthFail},
		{"unaligned SPF pass", with(func(in *DMARCInput) { in.SPF, in.SPFDomain = AuthPass, "mailer.example" }), AuthFail},
		{"SPF softfail", with(func(in *DMARCInput) { in.SPF, in.SPFDomain = AuthSoftFail, "customer.example" }), AuthFail},
		{"relaxed DKIM", with(func(in *DMARCInput) { in.DKIM = []DKIMOutcome{{"mail.customer.example", AuthPass}} }), AuthPass},
		{"strict DKIM", with(func(in *DMARCInput) {
			in.DKIM, in.StrictDKIM = []DKIMOutcome{{"mail.customer.example", AuthPass}}, true
		}), AuthFail},
		{"failed aligned DKIM, passing unaligned", with(func(in *DMARCInput) {
			in.DKIM = []DKIMOutcome{{"customer.example", AuthFail}, {"mailer.example", AuthPass}}
		}), AuthFail},
		{"second signature passes", with(func(in *DMARCInput) {
			in.DKIM = []DKIMOutcome{{"customer.example", AuthPermError}, {"customer.example", AuthPass}}
		}), AuthPass},
		{"aligned DKIM temperror", with(func(in *DMARCInput) { in.DKIM = []DKIMOutcome{{"customer.example", AuthTempError}} }), AuthTempError},
		{"aligned SPF temperror", with(func(in *DMARCInput) { in.SPF, in.SPFDomain = AuthTempError, "customer.example" }), AuthTempError},
		{"unaligned temperror is a failure", with(func(in *DMARCInput) { in.SPF, in.SPFDomain = AuthTempError, "mailer.example" }), AuthFail},
		{"temperror and a pass", with(func(in *DMARCInput) {
			in.SPF, in.SPFDomain = AuthTempError, "customer.example"
			in.DKIM = []DKIMOutcome{{"customer.example", AuthPass}}
		}), AuthPass},
	}
	for _, tt := range tests {
		if got := DMARCResult(tt.in); got != tt.want {
			t.Errorf("%s: DMARCResult = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestDecideAuth(t *testing.T) {
	tests := []struct {
		spf, dmarc, policy string
		failing            string
		want               AuthAction
	}{
		{AuthPass, AuthPass, config.AuthFailureReject, "", AuthDeliver},
		{AuthFail, AuthPass, config.AuthFailureReject, "", AuthDeliver}, // DMARC pass outweighs SPF
		{AuthFail, AuthNone, config.AuthFailureReject, "SPF", AuthReject},
		{AuthSoftFail, AuthNone, config.AuthFailureReject, "", AuthDeliver},
		{AuthPass, AuthFail, config.AuthFailureReject, "DMARC", AuthReject},
		{AuthPass, AuthFail, config.AuthFailureAccept, "DMARC", AuthDeliver},
		{AuthPass, AuthFail, config.AuthFailureFlag, "DMARC", AuthFlag},
		{AuthPass, AuthFail, config.AuthFailureQuarantine, "DMARC", AuthQuarantine},
		{AuthFail, AuthPermError, config.AuthFailureFlag, "SPF", AuthFlag},
		{AuthTempError, AuthNone, config.AuthFailureReject, "", AuthDefer},
		{AuthPass, AuthTempError, config.AuthFailureReject, "", AuthDefer},
		{AuthTempError, AuthPass, config.AuthFailureReject, "", AuthDeliver},
		{AuthPass, AuthTempError, config.AuthFailureQuarantine, "", AuthDeliver},
		{AuthTempError, AuthTempError, config.AuthFailureFlag, "", AuthDeliver},
	}
	for _, tt := range tests {
		failing := AuthFailure(tt.spf, tt.dmarc)
		got := DecideAuth(tt.policy, failing, AuthTemporary(tt.spf, tt.dmarc))
		if failing != tt.failing || got != tt.want {
			t.Errorf("spf=%s dmarc=%s %s: failing %q, action %d; want %q, %d", tt.spf, tt.dmarc, tt.policy, failing, got, tt.failing, tt.want)
		}
	}
}
