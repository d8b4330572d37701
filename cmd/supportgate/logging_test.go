package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/supportgate/supportgate/config"
)

// TestNewLogger: [log] format = "json" writes one JSON object per line,
// "text" key=value lines; events below the level are not written, and the
// level can be changed afterwards (a reload).
func TestNewLogger(t *testing.T) {
	var buf bytes.Buffer
	log, level := newLogger(&buf, config.Log{Format: config.LogJSON, Level: slog.LevelWarn})
	log.Info("not written")
	log.Warn("inbound message refused", "from", "carla@customer.example", "code", 550)
	level.Set(slog.LevelDebug)
	log.Debug("now written")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2 (the warning and the debug line after the change):\n%s", len(lines), buf.String())
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
		t.Fatalf("not JSON: %q: %v", lines[0], err)
	}
	if m["msg"] != "inbound message refused" || m["from"] != "carla@customer.example" || m["code"] != float64(550) || m["level"] != "WARN" {
		t.Errorf("JSON line %v", m)
	}

	buf.Reset()
	log, _ = newLogger(&buf, config.Log{Format: config.LogText, Level: slog.LevelInfo})
	log.Debug("not written")
	log.Info("inbound message stored", "from", "carla@customer.example")
	if got := buf.String(); !strings.Contains(got, `msg="inbound message stored" from=carla@customer.example`) || strings.Contains(got, "not written") {
		t.Errorf("text log %q", got)
	}
}
