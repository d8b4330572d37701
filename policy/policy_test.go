package policy

import (
	"slices"
	"testing"

	"github.com/supportgate/supportgate/config"
)

// testTOML is a small team: three inboxes, four agents with every kind of
// role (and one with none). The hash is the demo's (password demo-alice).
const testTOML = `
[server]
hostname = "mail.example.test"
data_dir = "./unused"

[[inbox]]
address = "support@example.test"
name = "Example Support"
max_participants = 3
bcc = ["archive@example.test"]

[[inbox]]
address = "billing@example.test"
name = "Billing"

[[inbox]]
address = "Sales@Example.test"

[[agent]]
email = "alice@example.test"
name = "Alice"
password_hash = "$2a$10$6v69aQ67.kjlIBsnMzVu.u8m.bGCfyfAETgCQ9s951d0ww4vQQVEe"
roles = { "support@example.test" = "admin", "BILLING@example.test" = "view" }

[[agent]]
email = "Bob@Example.test"
name = "Bob"
password_hash = "$2a$10$6v69aQ67.kjlIBsnMzVu.u8m.bGCfyfAETgCQ9s951d0ww4vQQVEe"
roles = { "support@example.test" = "reply" }

[[agent]]
email = "carol@example.test"
password_hash = "$2a$10$6v69aQ67.kjlIBsnMzVu.u8m.bGCfyfAETgCQ9s951d0ww4vQQVEe"
roles = { "support@example.test" = "view", "billing@example.test" = "reply", "sales@example.test" = "admin" }

[[agent]]
email = "dave@example.test"
password_hash = "$2a$10$6v69aQ67.kjlIBsnMzVu.u8m.bGCfyfAETgCQ9s951d0ww4vQQVEe"
`

func testConfig(t testing.TB) *config.Config {
	t.Helper()
	cfg, err := config.Parse("policy_test.toml", []byte(testTOML))
	if err != nil {
		t.Fatalf("config.Parse: %v", err)
	}
	return cfg
}

func agent(t testing.TB, cfg *config.Config, email string) config.Agent {
	t.Helper()
	a, ok := cfg.Agent(email)
	if !ok {
		t.Fatalf("no agent %s", email)
	}
	return a
}

func TestCanReadCanReply(t *testing.T) {
	tests := []struct {
		role            config.Role
		canRead, canRep bool
	}{
		{config.RoleAdmin, true, true},
		{config.RoleReply, true, true},
		{config.RoleView, true, false},
		{"", false, false},
		{"owner", false, false},
		{"ADMIN", false, false}, // config normalises roles; anything else is no role
		{"admin ", false, false},
	}
	for _, tt := range tests {
		if got := CanRead(tt.role); got != tt.canRead {
			t.Errorf("CanRead(%q) = %v, want %v", tt.role, got, tt.canRead)
		}
		if got := CanReply(tt.role); got != tt.canRep {
			t.Errorf("CanReply(%q) = %v, want %v", tt.role, got, tt.canRep)
		}
		if CanReply(tt.role) && !CanRead(tt.role) {
			t.Errorf("role %q may reply but not read", tt.role)
		}
	}
}

func TestVisibleInboxes(t *testing.T) {
	cfg := testConfig(t)
	tests := []struct {
		email string
		want  []string
	}{
		{"alice@example.test", []string{"support@example.test", "billing@example.test"}},
		{"bob@example.test", []string{"support@example.test"}},
		{"carol@example.test", []string{"support@example.test", "billing@example.test", "sales@example.test"}},
		{"dave@example.test", nil},
	}
	for _, tt := range tests {
		if got := VisibleInboxes(cfg, agent(t, cfg, tt.email)); !slices.Equal(got, tt.want) {
			t.Errorf("VisibleInboxes(%s) = %q, want %q (configuration order)", tt.email, got, tt.want)
		}
	}
	// A role for an address that is not (or no longer) an inbox shows nothing.
	ghost := config.Agent{Email: "ghost@example.test", Roles: map[string]config.Role{"gone@example.test": config.RoleAdmin}}
	if got := VisibleInboxes(cfg, ghost); got != nil {
		t.Errorf("VisibleInboxes(role for a removed inbox) = %q, want none", got)
	}
}

func TestInboxOf(t *testing.T) {
	cfg := testConfig(t)
	tests := []struct {
		addr string
		want string // "" = not an inbox
	}{
		{"support@example.test", "support@example.test"},
		{"SUPPORT@Example.TEST", "support@example.test"},
		{"support+42-abcdefghijklmnop@example.test", "support@example.test"},
		{"Support+TOKEN@example.test", "support@example.test"},
		{"support+@example.test", "support@example.test"},
		{" billing@example.test ", "billing@example.test"},
		{"billing+x+y@example.test", "billing@example.test"},
		{"sales@example.test", "sales@example.test"},
		{"bounces+1-abc@example.test", ""},
		{"alice@example.test", ""},
		{"support@example.test.evil.example", ""},
		{"support@other.example", ""},
		{"xsupport@example.test", ""},
		{"Example Support <support@example.test>", ""}, // callers pass bare addresses
		{"", ""},
		{"support", ""},
	}
	for _, tt := range tests {
		in, ok := InboxOf(cfg, tt.addr)
		if ok != (tt.want != "") || in.Address != tt.want {
			t.Errorf("InboxOf(%q) = %q, %v; want %q", tt.addr, in.Address, ok, tt.want)
		}
	}
	if in, _ := InboxOf(cfg, "support+1@example.test"); in.Name != "Example Support" || in.MaxParticipants != 3 {
		t.Errorf("InboxOf returned %+v, not the configured inbox", in)
	}
	if _, ok := InboxOf(nil, "support@example.test"); ok {
		t.Error("InboxOf(nil config) found an inbox")
	}
}

func TestIsInternal(t *testing.T) {
	cfg := testConfig(t)
	tests := []struct {
		addr string
		want bool
	}{
		{"support@example.test", true},
		{"Support@EXAMPLE.test", true},
		{"support+42-abc@example.test", true},
		{"billing+anything@example.test", true},
		{"sales@example.test", true},
		{"alice@example.test", true},
		{"ALICE@example.test", true},
		{"bob@example.test", true},
		{"dave@example.test", true}, // an agent without roles is still the team
		// Not internal: the design names inboxes, their plus forms and agents.
		{"alice+tag@example.test", false},
		{"archive@example.test", false}, // an inbox's bcc is an outside mailbox
		{"bounces@example.test", false},
		{"jan.devries@contoso.example", false},
		{"support@example.test.evil.example", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := IsInternal(cfg, tt.addr); got != tt.want {
			t.Errorf("IsInternal(%q) = %v, want %v", tt.addr, got, tt.want)
		}
	}
}

func TestReplyAddress(t *testing.T) {
	tests := []struct{ inbox, token, want string }{
		{"support@example.test", "42-zdnjah3cwgd4czz4", "support+42-zdnjah3cwgd4czz4@example.test"},
		{"first.last@sub.example.test", "1-a", "first.last+1-a@sub.example.test"},
	}
	cfg := testConfig(t)
	for _, tt := range tests {
		got := ReplyAddress(tt.inbox, tt.token)
		if got != tt.want {
			t.Errorf("ReplyAddress(%q, %q) = %q, want %q", tt.inbox, tt.token, got, tt.want)
		}
		if in, ok := InboxOf(cfg, got); tt.inbox == "support@example.test" && (!ok || in.Address != tt.inbox) {
			t.Errorf("the reply address %q does not lead back to its inbox", got)
		}
	}
}

func TestReplyRecipients(t *testing.T) {
	cfg := testConfig(t)
	const (
		owner  = "jan.devries@contoso.example"
		fin    = "finance@contoso.example"
		boss   = "boss@contoso.example"
		newcc  = "new.person@contoso.example"
		hidden = "auditor@audit.example"
		token  = "support+42-zdnjah3cwgd4czz4@example.test"
	)
	tests := []struct {
		name                   string
		participants           []string
		to, cc, envelope       []string
		inboxBCC               []string
		envelopeWant           []string
		hiddenWant, newPplWant []string
	}{
		{
			name:         "the inbox's bcc list is hidden, once",
			to:           []string{owner},
			envelope:     []string{owner, hidden},
			inboxBCC:     []string{"archive@archive.example", hidden},
			envelopeWant: []string{owner, hidden, "archive@archive.example"},
			hiddenWant:   []string{hidden, "archive@archive.example"},
		},
		{
			name:         "owner only",
			to:           []string{owner},
			envelope:     []string{owner},
			envelopeWant: []string{owner},
		},
		{
			name:         "owner even when the client left it out",
			to:           []string{token},
			envelope:     []string{token},
			envelopeWant: []string{owner},
		},
		{
			name:         "owner first",
			participants: []string{fin},
			to:           []string{newcc, owner},
			cc:           []string{fin},
			envelope:     []string{newcc, fin, owner},
			envelopeWant: []string{owner, fin, newcc},
			newPplWant:   []string{newcc},
		},
		{
			name:         "participants dropped by the client still get it",
			participants: []string{fin, boss},
			to:           []string{owner},
			envelope:     []string{owner},
			envelopeWant: []string{owner, fin, boss},
		},
		{
			name:         "new external To and Cc become participants",
			participants: []string{fin},
			to:           []string{owner, newcc},
			cc:           []string{fin, boss},
			envelope:     []string{owner, newcc, fin, boss},
			envelopeWant: []string{owner, fin, newcc, boss},
			newPplWant:   []string{newcc, boss},
		},
		{
			name:         "internal addresses never in the envelope",
			to:           []string{owner, "alice@example.test"},
			cc:           []string{"support@example.test", token, "billing+x@example.test", "Bob@Example.test"},
			envelope:     []string{owner, "alice@example.test", "support@example.test", token, "bob@example.test", "carol@example.test", "SUPPORT+9@example.test"},
			envelopeWant: []string{owner},
		},
		{
			name:         "envelope recipients absent from the headers are hidden",
			to:           []string{owner},
			envelope:     []string{owner, hidden},
			envelopeWant: []string{owner, hidden},
			hiddenWant:   []string{hidden},
		},
		{
			name:         "a participant in Bcc is no hidden recipient: it is in Cc anyway",
			participants: []string{fin},
			to:           []string{owner},
			envelope:     []string{owner, fin},
			envelopeWant: []string{owner, fin},
		},
		{
			name:         "the owner in Bcc is no hidden recipient",
			to:           []string{token},
			envelope:     []string{owner},
			envelopeWant: []string{owner},
		},
		{
			name:         "no duplicates",
			participants: []string{fin, fin},
			to:           []string{owner, owner, newcc},
			cc:           []string{fin, newcc},
			envelope:     []string{owner, fin, fin, newcc, hidden, hidden},
			envelopeWant: []string{owner, fin, newcc, hidden},
			hiddenWant:   []string{hidden},
			newPplWant:   []string{newcc},
		},
		{
			name:         "case differences are no new addresses",
			participants: []string{fin},
			to:           []string{"Jan.DeVries@Contoso.example"},
			cc:           []string{"FINANCE@contoso.example", newcc},
			envelope:     []string{"JAN.DEVRIES@contoso.example", "Finance@Contoso.Example", "New.Person@contoso.example"},
			envelopeWant: []string{owner, fin, newcc},
			newPplWant:   []string{newcc},
		},
		{
			name:         "hidden recipient spelled differently twice",
			to:           []string{owner},
			envelope:     []string{"Auditor@Audit.example", hidden},
			envelopeWant: []string{owner, "Auditor@Audit.example"},
			hiddenWant:   []string{"Auditor@Audit.example"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.envelope)
			got := ReplyRecipients(cfg, owner, tt.participants, tt.to, tt.cc, tt.envelope, tt.inboxBCC)
			if !slices.Equal(got.Envelope, tt.envelopeWant) {
				t.Errorf("Envelope = %q, want %q", got.Envelope, tt.envelopeWant)
			}
			if !slices.Equal(got.HiddenBCC, tt.hiddenWant) {
				t.Errorf("HiddenBCC = %q, want %q", got.HiddenBCC, tt.hiddenWant)
			}
			if !slices.Equal(got.NewParticipants, tt.newPplWant) {
				t.Errorf("NewParticipants = %q, want %q", got.NewParticipants, tt.newPplWant)
			}
			if len(got.Envelope) == 0 || got.Envelope[0] != owner {
				t.Errorf("Envelope = %q; the owner comes first", got.Envelope)
			}
			for _, a := range got.Envelope {
				if IsInternal(cfg, a) {
					t.Errorf("internal address %q in the envelope", a)
				}
			}
			for _, l := range [][]string{got.HiddenBCC, got.NewParticipants} {
				for _, a := range l {
					if !slices.Contains(got.Envelope, a) {
						t.Errorf("%q is hidden or new but not in the envelope %q", a, got.Envelope)
					}
				}
			}
			if !slices.Equal(in, tt.envelope) {
				t.Errorf("ReplyRecipients changed its envelope argument")
			}
		})
	}
}
