package config

import (
	"log/slog"
	"strconv"
	"strings"
	"testing"
)

func TestLogDefaults(t *testing.T) {
	c, err := Parse("l.toml", []byte(team))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Log{Format: LogText, Level: slog.LevelInfo}); c.Log != want {
		t.Errorf("Log = %+v, want %+v", c.Log, want)
	}
	demo, err := Demo()
	if err != nil {
		t.Fatal(err)
	}
	if demo.Log != c.Log {
		t.Errorf("the demo's [log] is %+v, want the defaults %+v", demo.Log, c.Log)
	}
}

func TestLogSet(t *testing.T) {
	for _, tc := range []struct {
		format, level string
		want          Log
	}{
		{"json", "debug", Log{LogJSON, slog.LevelDebug}},
		{"text", "info", Log{LogText, slog.LevelInfo}},
		{"JSON", "Warn", Log{LogJSON, slog.LevelWarn}},
		{"text", "error", Log{LogText, slog.LevelError}},
	} {
		doc := "[log]\nformat = \"" + tc.format + "\"\nlevel = \"" + tc.level + "\"\n" + team
		c, err := Parse("l.toml", []byte(doc))
		if err != nil {
			t.Fatalf("%s/%s: %v", tc.format, tc.level, err)
		}
		if c.Log != tc.want {
			t.Errorf("%s/%s: Log = %+v, want %+v", tc.format, tc.level, c.Log, tc.want)
		}
	}
}

func TestLogErrors(t *testing.T) {
	for _, tc := range []struct{ name, doc, phrase string }{
		{"format", "[log]\nformat = \"syslog\" #<-\n", `log.format is "syslog", but it must be "text" or "json"`},
		{"format empty", "[log]\nlevel = \"info\"\nformat = \"\" #<-\n", `log.format is "", but it must be "text" or "json"`},
		{"level", "[log]\nformat = \"json\"\nlevel = \"verbose\" #<-\n", `log.level is "verbose", but it must be "debug", "info", "warn" or "error"`},
		{"level number", "[log]\nlevel = -4 #<-\n", "log.level must be a string, not an integer"},
		{"level slog spelling", "[log]\nlevel = \"WARNING\" #<-\n", `log.level is "WARNING"`},
		{"unknown", "[log]\nfile = \"/var/log/supportgate.log\" #<-\n", `unknown key "log.file"`},
		{"not a table", "log = \"json\" #<-\n", "log must be a table, written [log]"},
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

// TestExampleDocumentsLog: config/example.toml shows [log] with its
// defaults, and what /metrics serves where http_listen is described.
func TestExampleDocumentsLog(t *testing.T) {
	ex := string(ExampleTOML())
	for _, k := range []string{"# [log]", `# format = "text"`, `# level = "info"`, "/metrics",
		"supportgate_smtp_messages_total", "supportgate_deliveries_total", "supportgate_queue_recipients",
		"supportgate_imap_sessions", "supportgate_auth_failures_total", "supportgate_conversations",
		"supportgate_store_commit_seconds"} {
		if !strings.Contains(ex, k) {
			t.Errorf("config/example.toml does not document %s", k)
		}
	}
	// Uncommented, the documented defaults parse to the defaults.
	doc := strings.Replace(strings.Replace(strings.Replace(ex, "# [log]\n", "[log]\n", 1),
		"# format = \"text\"\n", "format = \"text\"\n", 1), "# level = \"info\"\n", "level = \"info\"\n", 1)
	if !strings.Contains(doc, "\n[log]\n") || !strings.Contains(doc, "\nformat = \"text\"\n") || !strings.Contains(doc, "\nlevel = \"info\"\n") {
		t.Fatal("the example's [log] could not be uncommented")
	}
	c, err := Parse("example.toml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Log{Format: LogText, Level: slog.LevelInfo}); c.Log != want {
		t.Errorf("the example's [log] parses to %+v, want %+v", c.Log, want)
	}
}
