package config

import (
	"fmt"
	"strings"
	"testing"
)

// team is a valid tail: one inbox and one agent, appended to documents that test other tables.
const team = `
[[inbox]]
address = "support@example.test"

[[agent]]
email = "alice@example.test"
password_hash = "$2a$10$6v69aQ67.kjlIBsnMzVu.u8m.bGCfyfAETgCQ9s951d0ww4vQQVEe"
roles = { "support@example.test" = "admin" }
`

const hash = "$2a$10$6v69aQ67.kjlIBsnMzVu.u8m.bGCfyfAETgCQ9s951d0ww4vQQVEe"

// markedLine returns the number of the line that holds "#<-" (the line the error must name), or 0.
func markedLine(doc string) int {
	for i, l := range strings.Split(doc, "\n") {
		if strings.Contains(l, "#<-") {
			return i + 1
		}
	}
	return 0
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		doc    string
		phrase string
	}{
		// Decoding: syntax, types, unknown keys.
		{"syntax", "[server]\nhostname = \"mx.example.test #<-\n" + team, ""},
		{"type string", "[server]\nhostname = 25 #<-\n" + team, "server.hostname must be a string, not an integer"},
		{"type integer", "[server]\nmax_message_bytes = \"25MB\" #<-\n" + team, "server.max_message_bytes must be an integer, not a string"},
		{"type bool", "[[inbox]]\naddress = \"support@example.test\"\nsubject_tag = \"yes\" #<-\n", "inbox.subject_tag must be true or false"},
		{"type roles", "[[inbox]]\naddress = \"support@example.test\"\n[[agent]]\nemail = \"a@example.test\"\nroles = \"admin\" #<-\n", "agent.roles must be an inline table"},
		{"type role value", "[[inbox]]\naddress = \"support@example.test\"\n[[agent]]\nemail = \"a@example.test\"\nroles = { \"support@example.test\" = 1 } #<-\n", `must be "admin", "reply" or "view", not an integer`},
		{"type bcc entry", "[[inbox]]\naddress = \"support@example.test\"\nbcc = [\n  \"a@example.test\",\n  2, #<-\n]\n", "each entry of inbox.bcc must be a string, not an integer"},
		{"duplicate key", "[server]\nhostname = \"a.example\"\nhostname = \"b.example\" #<-\n" + team, "already defined"},
		{"single-bracket inbox", "[inbox] #<-\naddress = \"support@example.test\"\n", "write [[inbox]] with double brackets"},
		{"unknown top-level key", "colour = \"blue\" #<-\n" + team, `unknown key "colour"`},
		{"unknown table", "[smtp] #<-\nport = 25\n" + team, "unknown table [smtp]"},
		{"unknown server key", "[server]\nhostname = \"mx.example.test\"\nmx_port = 25 #<-\n" + team, `unknown key "server.mx_port"`},
		{"unknown key in agent 1", team + "colour = \"blue\" #<-\n", `unknown key "agent.colour"`},
		{"unknown key in agent 2", team + "\n[[agent]]\nemail = \"bob@example.test\"\npassword_hash = \"" + hash + "\"\nrole = \"reply\" #<-\n", `unknown key "agent.role"`},
		{"unknown key in inline array", "inbox = [{ address = \"a@example.test\" }, { adress = \"b@example.test\" }] #<-\n", `unknown key "inbox.adress"`},

		// [server]
		{"hostname control character", "[server]\nhostname = \"mx\\r\\nBcc: x@evil.example\" #<-\n" + team, "server.hostname contains a control character"},
		{"hostname invalid", "[server]\nhostname = \"mx_1.example\" #<-\n" + team, "not a valid host name"},
		{"data_dir empty", "[server]\ndata_dir = \"\" #<-\n" + team, "server.data_dir is empty"},
		{"listen without port", "[server]\nimap_listen = \"127.0.0.1\" #<-\n" + team, `server.imap_listen is "127.0.0.1", which is not a listen address`},
		{"listen bad port", "[server]\nhttp_listen = \"127.0.0.1:99999\" #<-\n" + team, "not a number from 0 to 65535"},
		{"max_message_bytes zero", "[server]\nmax_message_bytes = 0 #<-\n" + team, "server.max_message_bytes is 0, but it must be greater than 0"},
		{"implicit TLS without tls", "[server]\nsubmissions_listen = \":465\" #<-\n" + team, "implicit TLS needs [tls] cert_file and key_file"},

		// [dns], [tls], [dkim]
		{"resolver without port", "[dns]\nresolver = \"192.0.2.53\" #<-\n" + team, `dns.resolver is "192.0.2.53", which is not "host:port"`},
		{"tls half", "[tls]\nkey_file = \"/k.pem\" #<-\n" + team, "[tls] has key_file but no cert_file; set both or neither"},
		{"dkim half", "[dkim]\nselector = \"sg1\" #<-\n" + team, "[dkim] has selector but no private_key_file"},
		{"dkim selector", "[dkim]\nselector = \"sg 1\" #<-\nprivate_key_file = \"/d.pem\"\n" + team, "dkim.selector is \"sg 1\""},

		// [outbound]
		{"bad mode", "[outbound]\nmode = \"smtp\" #<-\n" + team, `outbound.mode is "smtp", but it must be "mx", "relay" or "directory"`},
		{"relay missing", "[outbound]\nmode = \"relay\" #<-\n" + team, "outbound.relay is not set"},
		{"relay bad", "[outbound]\nrelay = \"smtp.provider.example\" #<-\n" + team, "outbound.relay is \"smtp.provider.example\", which is not \"host:port\""},
		{"retry bad entry", "[outbound]\nretry = [\n  \"5m\",\n  \"5 minutes\", #<-\n]\n" + team, `outbound.retry has "5 minutes", which is not a duration`},
		{"retry empty", "[outbound]\nretry = [] #<-\n" + team, "outbound.retry is empty"},
		{"give_up_after bad", "[outbound]\ngive_up_after = \"forever\" #<-\n" + team, `outbound.give_up_after is "forever", which is not a duration`},
		{"give_up_after zero", "[outbound]\ngive_up_after = \"0d\" #<-\n" + team, "longer than zero"},
		{"max_connections zero", "[outbound]\nmax_connections = 0 #<-\n" + team, "outbound.max_connections is 0, but it must be from 1 to 1000"},
		{"per domain above all", "[outbound]\nmax_connections = 5\nmax_connections_per_domain = 6 #<-\n" + team, "more than outbound.max_connections (5)"},

		// [[inbox]]
		{"no inbox", "[server]\nhostname = \"mx.example.test\"\n", "at least one [[inbox]] is required"},
		{"inbox without address", "[[inbox]] #<-\nname = \"Support\"\n", "this [[inbox]] has no address"},
		{"inbox address invalid", "[[inbox]]\naddress = \"support\" #<-\n", `inbox address "support" is not a valid email address: it has no @`},
		{"inbox address plus", "[[inbox]]\naddress = \"support+vip@example.test\" #<-\n", "contains '+'"},
		{"inbox address bounces", "[[inbox]]\naddress = \"bounces@example.test\" #<-\n", "is reserved"},
		{"duplicate inbox", "[[inbox]]\naddress = \"support@example.test\"\n\n[[inbox]]\nname = \"Again\"\naddress = \"Support@Example.test\" #<-\n", `inbox "support@example.test" is defined twice; the first is on line 2`},
		{"inbox name control", "[[inbox]]\naddress = \"support@example.test\"\nname = \"Support\\u0000\" #<-\n", "inbox.name contains a control character"},
		{"inbox name newline", "[[inbox]]\naddress = \"support@example.test\"\nname = \"\"\"Support #<-\nBcc: x@evil.example\"\"\"\n", "inbox.name contains a control character"},
		{"max_participants negative", "[[inbox]]\naddress = \"support@example.test\"\nmax_participants = -1 #<-\n", "inbox.max_participants is -1, but it must be 0 or more"},
		{"strangers unknown", "[[inbox]]\naddress = \"support@example.test\"\nstrangers = \"maybe\" #<-\n", "inbox.strangers is \"maybe\""},
		// [notifications]
		{"notifications first_after bad", "[notifications]\nfirst_after = \"soon\" #<-\n" + team, `notifications.first_after is "soon", which is not a duration`},
		{"notifications interval too long", "[notifications]\ninterval = \"30d\" #<-\n" + team, "it must be at most 7d"},
		{"notifications max_per_day negative", "[notifications]\nmax_per_day = -1 #<-\n" + team, "notifications.max_per_day is -1, but it must be from 0 (no notifications) to 96"},
		{"notifications unknown key", "[notifications]\nevery = \"1h\" #<-\n" + team, `unknown key "notifications.every"`},
		// inbox.assign and [[inbox.rule]] (config/rules.go)
		{"assign unknown", "[[inbox]]\naddress = \"support@example.test\"\nassign = \"random\" #<-\n", `inbox.assign is "random"; it must be "none" or "round-robin"`},
		{"round-robin without agents", "[[inbox]]\naddress = \"support@example.test\"\nassign = \"round-robin\" #<-\n[[agent]]\nemail = \"v@example.test\"\npassword_hash = \"" + hash + "\"\nroles = { \"support@example.test\" = \"view\" }\n", "no agent has the reply or admin role"},
		{"rule bad pattern", team + "[[inbox.rule]]\nsubject = '(refund' #<-\ntags = [\"billing\"]\n", "inbox.rule.subject is not a regular expression Go understands: error parsing regexp: missing closing )"},
		{"rule empty pattern", team + "[[inbox.rule]]\nsender = '' #<-\ntags = [\"billing\"]\n", "inbox.rule.sender is empty"},
		{"rule without pattern", team + "[[inbox.rule]] #<-\ntags = [\"billing\"]\n", "rule 1 matches everything"},
		{"rule without action", team + "[[inbox.rule]] #<-\nname = \"Idle\"\nsubject = 'x'\n", "Idle does nothing"},
		{"rule bad tag", team + "[[inbox.rule]]\nsubject = 'x'\ntags = [\"two words\"] #<-\n", `inbox.rule.tags has "two words", which is not a tag`},
		{"rule bad follower", team + "[[inbox.rule]]\nsubject = 'x'\nfollowers = [\"ceo\"] #<-\n", `inbox.rule.followers has "ceo", which is not a valid email address`},
		{"rule assigns a stranger", team + "[[inbox.rule]]\nsubject = 'x'\nassign = \"eve@example.test\" #<-\n", `rule 1 of inbox "support@example.test" assigns to "eve@example.test", who is not an agent with the reply or admin role in it`},
		{"rule follower is an inbox", team + "[[inbox.rule]]\nsubject = 'x'\nfollowers = [\"ok@example.test\",\n  \"Support+x@example.test\"] #<-\n", `has the inbox "support+x@example.test" as a follower`},
		{"rule unknown key", team + "[[inbox.rule]]\nsubject = 'x'\ntag = \"billing\" #<-\n", `unknown key "inbox.rule.tag"`},
		{"second inbox's rule", team + "[[inbox]]\naddress = \"sales@example.test\"\n[[inbox.rule]]\nsubject = 'x'\ntags = [\"ok\"]\n[[inbox.rule]]\nname = \"Bad\"\nbody = '[' #<-\ntags = [\"x\"]\n", "inbox.rule.body is not a regular expression"},
		{"continuity_window bad", "[[inbox]]\naddress = \"support@example.test\"\ncontinuity_window = \"soon\" #<-\n", "inbox.continuity_window is \"soon\""},
		{"bcc invalid", "[[inbox]]\naddress = \"support@example.test\"\nbcc = [\"archive@example.test\",\n\"archive at example.test\"] #<-\n", `inbox.bcc has "archive at example.test", which is not a valid email address`},
		{"bcc is an inbox", "[[inbox]]\naddress = \"support@example.test\"\nbcc = [\"sales@example.test\"] #<-\n[[inbox]]\naddress = \"sales@example.test\"\n", "which is an inbox"},

		// [[agent]]
		{"agent without email", "[[inbox]]\naddress = \"support@example.test\"\n[[agent]] #<-\npassword_hash = \"" + hash + "\"\n", "this [[agent]] has no email"},
		{"agent email invalid", "[[inbox]]\naddress = \"support@example.test\"\n[[agent]]\nemail = \"alice@example..test\" #<-\npassword_hash = \"" + hash + "\"\n", `agent email "alice@example..test" is not a valid email address`},
		{"agent is inbox", "[[inbox]]\naddress = \"support@example.test\"\n[[agent]]\nemail = \"SUPPORT@example.test\" #<-\npassword_hash = \"" + hash + "\"\n", `agent email "support@example.test" is an inbox address`},
		{"agent is plus form of inbox", "[[inbox]]\naddress = \"support@example.test\"\n[[agent]]\nemail = \"support+alice@example.test\" #<-\npassword_hash = \"" + hash + "\"\n", "is a plus form of the inbox"},
		{"duplicate agent", team + "[[agent]]\nemail = \"Alice@example.test\" #<-\npassword_hash = \"" + hash + "\"\n", `agent "alice@example.test" is defined twice; the first is on line 6`},
		{"agent name control", team + "name = \"Alice\\tB\" #<-\n", "agent.name contains a control character"},
		{"agent without hash", "[[inbox]]\naddress = \"support@example.test\"\n[[agent]] #<-\nemail = \"bob@example.test\"\n", `agent "bob@example.test" has no password_hash`},
		{"agent bad hash", "[[inbox]]\naddress = \"support@example.test\"\n[[agent]]\nemail = \"bob@example.test\"\npassword_hash = \"demo-bob\" #<-\n", "not a bcrypt hash"},
		{"role for unknown inbox", "[[inbox]]\naddress = \"support@example.test\"\n[[agent]]\nemail = \"bob@example.test\"\npassword_hash = \"" + hash + "\"\nroles = { \"sales@example.test\" = \"reply\" } #<-\n", `agent "bob@example.test" has a role for "sales@example.test", which is not an inbox`},
		{"role for unknown inbox, multi-line", "[[inbox]]\naddress = \"support@example.test\"\n[[agent]]\nemail = \"bob@example.test\"\npassword_hash = \"" + hash + "\"\nroles = {\n  \"support@example.test\" = \"reply\",\n  \"sales@example.test\" = \"reply\", #<-\n}\n", `has a role for "sales@example.test", which is not an inbox`},
		{"unknown role", "[[inbox]]\naddress = \"support@example.test\"\n[[agent]]\nemail = \"bob@example.test\"\npassword_hash = \"" + hash + "\"\nroles = { \"support@example.test\" = \"owner\" } #<-\n", `has the role "owner" for "support@example.test"; a role is "admin", "reply" or "view"`},
		{"two roles for one inbox", "[[inbox]]\naddress = \"support@example.test\"\n[[agent]]\nemail = \"bob@example.test\"\npassword_hash = \"" + hash + "\"\nroles = { \"support@example.test\" = \"view\", \"Support@example.test\" = \"admin\" } #<-\n", "has two roles for"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("supportgate.toml", []byte(tc.doc))
			if err == nil {
				t.Fatalf("no error for\n%s", tc.doc)
			}
			msg := err.Error()
			prefix := "supportgate.toml: "
			if line := markedLine(tc.doc); line > 0 {
				prefix = fmt.Sprintf("supportgate.toml:%d: ", line)
			}
			if !strings.Contains(msg, prefix+"") || !strings.Contains(msg, tc.phrase) {
				t.Errorf("error\n%s\nwant %q and %q", msg, prefix, tc.phrase)
			}
			for _, l := range strings.Split(msg, "\n") {
				if !strings.HasPrefix(l, "supportgate.toml:") {
					t.Errorf("error line %q does not begin with the file name", l)
				}
				if strings.Contains(l, tc.phrase) && !strings.HasPrefix(l, prefix) {
					t.Errorf("%q is on the wrong line, want %q", l, prefix)
				}
			}
		})
	}
}

// TestExactLines pins a few positions by number, without the marker helper.
func TestExactLines(t *testing.T) {
	doc := `[[inbox]]
address = "support@example.test"

[[agent]]
email = "alice@example.test"
password_hash = "` + hash + `"

[[agent]]
email = "bob@example.test"
password_hash = "` + hash + `"
colour = "blue"
roles = { "sales@example.test" = "reply" }

[[inbox]]
address = "support@example.test"
`
	_, err := Parse("supportgate.toml", []byte(doc))
	want := `supportgate.toml:11: unknown key "agent.colour"
supportgate.toml:12: agent "bob@example.test" has a role for "sales@example.test", which is not an inbox
supportgate.toml:15: inbox "support@example.test" is defined twice; the first is on line 2`
	if err == nil || err.Error() != want {
		t.Errorf("error\n%v\nwant\n%s", err, want)
	}
}

// TestSeveralErrors checks that every problem is reported, each with its own line, in line order.
func TestSeveralErrors(t *testing.T) {
	doc := `[outbound]
mode = "carrier-pigeon"
[server]
max_message_bytes = -5
[tls]
cert_file = "/c.pem"
[[agent]]
email = "nobody"
`
	_, err := Parse("s.toml", []byte(doc))
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	wantPrefixes := []string{"s.toml:2: ", "s.toml:4: ", "s.toml:6: ", "s.toml:7: ", "s.toml:8: ", "s.toml: "}
	if len(lines) != len(wantPrefixes) {
		t.Fatalf("got %d errors, want %d:\n%v", len(lines), len(wantPrefixes), err)
	}
	for i, p := range wantPrefixes {
		if !strings.HasPrefix(lines[i], p) {
			t.Errorf("error %d = %q, want prefix %q", i, lines[i], p)
		}
	}
}
