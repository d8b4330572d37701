package config

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func TestDemo(t *testing.T) {
	c, err := Demo()
	if err != nil {
		t.Fatalf("Demo: %v", err)
	}
	if !c.Demo || c.Source != "config/example.toml (embedded demo)" {
		t.Errorf("Demo = %v, Source = %q", c.Demo, c.Source)
	}
	want := Server{
		Hostname:         "mail.example.test",
		DataDir:          "./supportgate-data",
		MXListen:         "127.0.0.1:2525",
		SubmissionListen: "127.0.0.1:2587",
		IMAPListen:       "127.0.0.1:1143",
		HTTPListen:       "127.0.0.1:9325",
		MaxMessageBytes:  26214400,
	}
	if c.Server != want {
		t.Errorf("Server = %+v, want %+v", c.Server, want)
	}
	if c.Outbound.Mode != "directory" || c.Outbound.Directory != filepath.Join("./supportgate-data", "outbox") {
		t.Errorf("Outbound = %+v", c.Outbound)
	}
	if c.TLS != (TLS{}) || c.DKIM != (DKIM{}) || c.DNS != (DNS{}) {
		t.Errorf("TLS, DKIM, DNS = %+v, %+v, %+v; want all empty", c.TLS, c.DKIM, c.DNS)
	}
	if len(c.Inboxes) != 1 {
		t.Fatalf("Inboxes = %+v", c.Inboxes)
	}
	in := c.Inboxes[0]
	if in.Address != "support@example.test" || in.Name != "Example Support" || in.MaxParticipants != 10 || !in.SubjectTag || in.RequireTag {
		t.Errorf("inbox = %+v", in)
	}
	agents := []struct {
		email, name, password string
		role                  Role
	}{
		{"alice@example.test", "Alice", "demo-alice", RoleAdmin},
		{"bob@example.test", "Bob", "demo-bob", RoleReply},
		{"carol@example.test", "Carol", "demo-carol", RoleView},
	}
	if len(c.Agents) != len(agents) {
		t.Fatalf("Agents = %+v", c.Agents)
	}
	for i, w := range agents {
		a := c.Agents[i]
		if a.Email != w.email || a.Name != w.name {
			t.Errorf("agent %d = %+v, want %s %s", i, a, w.email, w.name)
		}
		if !reflect.DeepEqual(a.Roles, map[string]Role{"support@example.test": w.role}) {
			t.Errorf("agent %s roles = %v, want %s", w.email, a.Roles, w.role)
		}
		if err := bcrypt.CompareHashAndPassword([]byte(a.PasswordHash), []byte(w.password)); err != nil {
			t.Errorf("agent %s: the hash does not match the documented password %q: %v", w.email, w.password, err)
		}
		if cost, err := bcrypt.Cost([]byte(a.PasswordHash)); err != nil || cost != 10 {
			t.Errorf("agent %s: cost %d, %v; want 10", w.email, cost, err)
		}
	}
	if err := c.CheckLoopback(); err != nil {
		t.Errorf("CheckLoopback: %v", err)
	}
	if !bytes.Equal(ExampleTOML(), exampleTOML) || !strings.Contains(string(ExampleTOML()), `address = "support@example.test"`) {
		t.Error("ExampleTOML does not return the embedded example")
	}
}

const minimal = "[[inbox]]\naddress = \"support@example.test\"\n"

func TestDefaults(t *testing.T) {
	doc := minimal + `
[[agent]]
email = "Dave@Example.TEST"
password_hash = "$2a$10$6v69aQ67.kjlIBsnMzVu.u8m.bGCfyfAETgCQ9s951d0ww4vQQVEe"
roles = { "Support@Example.test" = "reply" }
`
	c, err := Parse("min.toml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if c.Source != "min.toml" || c.Demo {
		t.Errorf("Source %q, Demo %v", c.Source, c.Demo)
	}
	if c.Server.Hostname == "" || !validHostname(c.Server.Hostname) {
		t.Errorf("default hostname %q", c.Server.Hostname)
	}
	s := c.Server
	s.Hostname = ""
	want := Server{DataDir: "/var/lib/supportgate", MXListen: ":25", SubmissionListen: ":587", IMAPListen: ":143",
		HTTPListen: "127.0.0.1:9325", MaxMessageBytes: 26214400}
	if s != want {
		t.Errorf("Server = %+v, want %+v", s, want)
	}
	wantOut := Outbound{Mode: "mx", Directory: "/var/lib/supportgate/outbox",
		Retry:       []time.Duration{5 * time.Minute, 15 * time.Minute, time.Hour, 4 * time.Hour, 8 * time.Hour},
		GiveUpAfter: 120 * time.Hour, MaxConnections: 20, MaxConnectionsPerDomain: 10}
	if !reflect.DeepEqual(c.Outbound, wantOut) {
		t.Errorf("Outbound = %+v, want %+v", c.Outbound, wantOut)
	}
	if want := (Notifications{FirstAfter: 5 * time.Minute, Interval: 4 * time.Hour, MaxPerDay: 3}); c.Notifications != want {
		t.Errorf("Notifications = %+v, want %+v", c.Notifications, want)
	}
	wantIn := Inbox{Address: "support@example.test", Name: "support@example.test", MaxParticipants: 10, SubjectTag: true, CollisionCheck: true, Strangers: StrangersParticipant, AuthFailure: AuthFailureFlag, Assign: AssignNone,
		AutoAcknowledgeText: DefaultAutoAcknowledgeText}
	if !reflect.DeepEqual(c.Inboxes, []Inbox{wantIn}) {
		t.Errorf("Inboxes = %+v", c.Inboxes)
	}
	a, ok := c.Agent("DAVE@example.test")
	if !ok || a.Email != "dave@example.test" || a.Name != "Dave" || a.Roles["support@example.test"] != RoleReply {
		t.Errorf("Agent = %+v, %v", a, ok)
	}
	if _, ok := c.Inbox("SUPPORT@example.test"); !ok {
		t.Error("Inbox lookup is not case-insensitive")
	}
	if _, ok := c.Inbox("sales@example.test"); ok {
		t.Error("Inbox found an inbox that does not exist")
	}
	if _, ok := c.Agent("nobody@example.test"); ok {
		t.Error("Agent found an agent that does not exist")
	}
	if err := c.CheckLoopback(); err == nil || !strings.Contains(err.Error(), `server.mx_listen is ":25"`) {
		t.Errorf("CheckLoopback of the defaults: %v", err)
	}
}

func TestValues(t *testing.T) {
	doc := `[server]
hostname = "mx.acme.example"
data_dir = "/srv/sg"
mx_listen = ""
submissions_listen = ":465"
imaps_listen = "[::1]:993"
max_message_bytes = 1000
[dns]
resolver = "[2001:db8::53]:53"
[tls]
cert_file = "/c.pem"
key_file = "/k.pem"
[outbound]
mode = "relay"
relay = "smtp.provider.example:587"
retry = ["90s", "1h30m", "1d", "1.5d"]
give_up_after = "2d12h"
max_connections = 50
max_connections_per_domain = 25
relay_ca_file = "/etc/sg/relay-ca.pem"
[dkim]
selector = "sg1"
private_key_file = "/dkim.pem"
[[inbox]]
address = "Support@ACME.example"
name = "Acme Support – Ünïcode"
max_participants = 0
bcc = ["Archive@acme.example", "archive@acme.example", "audit@acme.example"]
subject_tag = false
require_tag = true
`
	c, err := Parse("v.toml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.MXListen != "" || c.Server.SubmissionListen != ":587" || c.Server.IMAPSListen != "[::1]:993" || c.Server.MaxMessageBytes != 1000 {
		t.Errorf("Server = %+v", c.Server)
	}
	if c.Outbound.Directory != "/srv/sg/outbox" || c.Outbound.GiveUpAfter != 60*time.Hour ||
		c.Outbound.MaxConnections != 50 || c.Outbound.MaxConnectionsPerDomain != 25 || c.Outbound.RelayCAFile != "/etc/sg/relay-ca.pem" ||
		!reflect.DeepEqual(c.Outbound.Retry, []time.Duration{90 * time.Second, 90 * time.Minute, 24 * time.Hour, 36 * time.Hour}) {
		t.Errorf("Outbound = %+v", c.Outbound)
	}
	in := c.Inboxes[0]
	if in.Address != "support@acme.example" || in.MaxParticipants != 0 || in.SubjectTag || !in.RequireTag ||
		!reflect.DeepEqual(in.BCC, []string{"archive@acme.example", "audit@acme.example"}) {
		t.Errorf("Inbox = %+v", in)
	}
	if c.Agents == nil || len(c.Agents) != 0 {
		t.Errorf("Agents = %#v, want empty", c.Agents)
	}
}

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"5m", 5 * time.Minute, true},
		{"5d", 120 * time.Hour, true},
		{"1d12h", 36 * time.Hour, true},
		{"0.5d", 12 * time.Hour, true},
		{"1h30m", 90 * time.Minute, true},
		{"250ms", 250 * time.Millisecond, true},
		{"", 0, false},
		{"0s", 0, false},
		{"5", 0, false},
		{"-5m", 0, false},
		{"5w", 0, false},
		{"d", 0, false},
		{"1..5d", 0, false},
		{"9999999999d", 0, false},
		{"106751d106751d", 0, false},
		{"5 m", 0, false},
	} {
		got, why := parseDuration(tc.in)
		if (why == "") != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("parseDuration(%q) = %v, %q; want %v, ok %v", tc.in, got, why, tc.want, tc.ok)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "supportgate.toml")
	if err := os.WriteFile(path, ExampleTOML(), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Source != path || c.Demo || len(c.Agents) != 3 {
		t.Errorf("Load: Source %q, Demo %v, %d agents", c.Source, c.Demo, len(c.Agents))
	}

	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte(minimal+"colour = \"blue\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(bad); err == nil || err.Error() != bad+`:3: unknown key "inbox.colour"` {
		t.Errorf("Load(bad) = %v", err)
	}
	missing := filepath.Join(dir, "missing.toml")
	if _, err := Load(missing); err == nil || !strings.HasPrefix(err.Error(), missing+": ") || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("Load(missing) = %v", err)
	}
}

func TestCheckLoopback(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:25", true},
		{"127.1.2.3:25", true},
		{"[::1]:25", true},
		{"localhost:25", true},
		{"", true},
		{":25", false},
		{"0.0.0.0:25", false},
		{"[::]:25", false},
		{"192.0.2.1:25", false},
		{"mail.example.test:25", false},
	} {
		c := &Config{Server: Server{MXListen: "127.0.0.1:25", IMAPSListen: tc.addr}}
		err := c.CheckLoopback()
		if (err == nil) != tc.ok {
			t.Errorf("CheckLoopback with imaps_listen %q = %v, want ok %v", tc.addr, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "server.imaps_listen is "+`"`+tc.addr+`"`) {
			t.Errorf("CheckLoopback error %q does not name the key and value", err)
		}
	}
}

func TestHashPassword(t *testing.T) {
	h, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !bcryptHash.MatchString(h) || bcrypt.CompareHashAndPassword([]byte(h), []byte("correct horse")) != nil {
		t.Errorf("HashPassword = %q", h)
	}
	if cost, _ := bcrypt.Cost([]byte(h)); cost != bcrypt.DefaultCost {
		t.Errorf("cost %d", cost)
	}
	doc := minimal + "[[agent]]\nemail = \"x@example.test\"\npassword_hash = \"" + h + "\"\n"
	if _, err := Parse("h.toml", []byte(doc)); err != nil {
		t.Errorf("a hash from HashPassword is refused: %v", err)
	}
	if _, err := HashPassword(""); err == nil {
		t.Error("HashPassword accepted an empty password")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(ExampleTOML())
	f.Add([]byte(minimal))
	f.Add([]byte("inbox = [{address = \"a@b\", bcc = [\"c@d\"]}]\n[[agent]]\nroles = {\n \"a@b\" = \"view\",\n}\n"))
	f.Add([]byte("[server]\nhostname = 1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.toml", data)
		if err == nil {
			if c == nil || len(c.Inboxes) == 0 {
				t.Fatalf("Parse returned %v without an error", c)
			}
			return
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			if !strings.HasPrefix(line, "fuzz.toml:") {
				t.Fatalf("error line does not begin with the name: %q", line)
			}
		}
	})
}

// TestExampleRulesAreValid: the commented assign and [[inbox.rule]] lines
// of the example, uncommented, are a valid configuration that means what
// the comments say.
func TestExampleRulesAreValid(t *testing.T) {
	ex := string(ExampleTOML())
	start := strings.Index(ex, "# assign = \"round-robin\"")
	end := strings.Index(ex, "# followers = [\"account-manager@example.test\"]")
	if start < 0 || end < 0 {
		t.Fatal("the example no longer documents assign and [[inbox.rule]]")
	}
	end += strings.Index(ex[end:], "\n") + 1
	var block []string
	for _, l := range strings.Split(ex[start:end], "\n") {
		if strings.HasPrefix(l, "# ") && (strings.Contains(l, " = ") || strings.HasPrefix(l, "# [[")) {
			block = append(block, strings.TrimPrefix(l, "# "))
		}
	}
	// The block goes where it is documented: at the end of the [[inbox]] table.
	at := strings.Index(ex, "\n# One [[agent]]")
	doc := ex[:at] + "\n" + strings.Join(block, "\n") + "\n" + ex[at:]
	c, err := Parse("example-rules.toml", []byte(doc))
	if err != nil {
		t.Fatalf("the example's rules do not load:\n%v\n%s", err, strings.Join(block, "\n"))
	}
	in := c.Inboxes[0]
	if in.Assign != AssignRoundRobin || len(in.Rules) != 2 {
		t.Fatalf("assign %q, %d rules", in.Assign, len(in.Rules))
	}
	billing, vip := in.Rules[0], in.Rules[1]
	if billing.Name != "Billing" || !billing.Subject.MatchString("Your INVOICE") || billing.Assign != "bob@example.test" {
		t.Errorf("Billing rule: %+v", billing)
	}
	if !vip.Sender.MatchString("cfo@bigcorp.example") || vip.Sender.MatchString("cfo@bigcorpXexample") {
		t.Errorf("the backslash of the key accounts' pattern is not kept: %v", vip.Sender)
	}
	if got := c.AssignableAgents(in.Address); !slices.Equal(got, []string{"alice@example.test", "bob@example.test"}) {
		t.Errorf("AssignableAgents = %v, want alice and bob (carol only views)", got)
	}
}
