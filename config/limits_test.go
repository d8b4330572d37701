package config

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestLimitsDefaults(t *testing.T) {
	c, err := Parse("l.toml", []byte(team))
	if err != nil {
		t.Fatal(err)
	}
	if c.Limits != DefaultLimits() {
		t.Errorf("Limits = %+v, want %+v", c.Limits, DefaultLimits())
	}
	if c.Limits.MaxRecipients != 100 {
		t.Errorf("max_recipients defaults to %d, want 100 (RFC 5321 4.5.3.1.8)", c.Limits.MaxRecipients)
	}
}

func TestLimitsSet(t *testing.T) {
	doc := "[limits]\nmax_recipients = 5\nmax_connections_per_ip = 3\nmax_messages_per_sender_per_hour = 7\n" +
		"max_auth_failures_per_ip = 4\nauth_lockout = \"1h\"\nauth_failure_delay = \"50ms\"\nread_timeout = \"2s\"\n" +
		"max_auto_acknowledgements_per_sender_per_day = 3\nmax_inflight_bytes = 104857600\n" + team
	c, err := Parse("l.toml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := Limits{MaxRecipients: 5, MaxConnectionsPerIP: 3, MaxMessagesPerSenderPerHour: 7, MaxAuthFailuresPerIP: 4,
		AuthLockout: time.Hour, AuthFailureDelay: 50 * time.Millisecond, ReadTimeout: 2 * time.Second, MaxAutoAcksPerSenderPerDay: 3,
		MaxInflightBytes: 100 << 20}
	if c.Limits != want {
		t.Errorf("Limits = %+v, want %+v", c.Limits, want)
	}
}

func TestLimitsErrors(t *testing.T) {
	for _, tc := range []struct{ name, doc, phrase string }{
		{"recipients zero", "[limits]\nmax_recipients = 0 #<-\n", "limits.max_recipients is 0, but it must be from 1 to"},
		{"connections negative", "[limits]\nmax_connections_per_ip = -1 #<-\n", "limits.max_connections_per_ip is -1"},
		{"messages huge", "[limits]\nmax_messages_per_sender_per_hour = 9999999999 #<-\n", "limits.max_messages_per_sender_per_hour is 9999999999"},
		{"failures zero", "[limits]\nmax_auth_failures_per_ip = 0 #<-\n", "limits.max_auth_failures_per_ip is 0"},
		{"lockout bad", "[limits]\nauth_lockout = \"a while\" #<-\n", `limits.auth_lockout is "a while", which is not a duration`},
		{"lockout too long", "[limits]\nauth_lockout = \"2d\" #<-\n", "at most 24h"},
		{"timeout zero", "[limits]\nread_timeout = \"0s\" #<-\n", "limits.read_timeout"},
		{"delay too long", "[limits]\nauth_failure_delay = \"1m\" #<-\n", "ten times it must stay under read_timeout"},
		{"type", "[limits]\nmax_recipients = \"many\" #<-\n", "limits.max_recipients must be an integer"},
		{"acks zero", "[limits]\nmax_auto_acknowledgements_per_sender_per_day = 0 #<-\n", "limits.max_auto_acknowledgements_per_sender_per_day is 0, but it must be from 1 to"},
		{"inflight zero", "[limits]\nmax_inflight_bytes = 0 #<-\n", "limits.max_inflight_bytes is 0, but it must be from 1 to"},
		{"inflight below a message", "[limits]\nmax_inflight_bytes = 1000 #<-\n", "less than server.max_message_bytes"},
		{"unknown", "[limits]\nmax_rcpt = 5 #<-\n", `unknown key "limits.max_rcpt"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := tc.doc + team
			_, err := Parse("l.toml", []byte(doc))
			if err == nil {
				t.Fatal("accepted")
			}
			want := "l.toml:" + strconv.Itoa(markedLine(doc)) + ": "
			if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), tc.phrase) {
				t.Errorf("error %q, want %q and %q", err, want, tc.phrase)
			}
		})
	}
}

func TestExampleDocumentsLimits(t *testing.T) {
	ex := string(ExampleTOML())
	for _, k := range []string{"[limits]", "max_recipients", "max_connections_per_ip", "max_messages_per_sender_per_hour",
		"max_auth_failures_per_ip", "auth_lockout", "auth_failure_delay", "read_timeout",
		"max_auto_acknowledgements_per_sender_per_day", "auto_acknowledge", "auto_acknowledge_text"} {
		if !strings.Contains(ex, k) {
			t.Errorf("config/example.toml does not document %s", k)
		}
	}
}
