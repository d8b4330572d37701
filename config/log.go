package config

import (
	"log/slog"
	"strings"
)

// Log is the [log] table: how the daemon writes its log (to standard error;
// DESIGN.md §10).
type Log struct {
	// Format is format: LogText (default), one "key=value" line per event
	// (log/slog's TextHandler), or LogJSON, one JSON object per line
	// (slog's JSONHandler), for a log collector.
	Format string
	// Level is level: the least severe events written; "debug", "info"
	// (default), "warn" or "error".
	Level slog.Level
}

// Values of Log.Format.
const (
	LogText = "text"
	LogJSON = "json"
)

type fileLog struct {
	Format *string `toml:"format"`
	Level  *string `toml:"level"`
}

// logLevels are the values of log.level.
var logLevels = map[string]slog.Level{
	"debug": slog.LevelDebug,
	"info":  slog.LevelInfo,
	"warn":  slog.LevelWarn,
	"error": slog.LevelError,
}

// log validates [log] and applies its defaults. Values are
// case-insensitive.
func (v *validator) log(l *Log, fl *fileLog) {
	l.Format, l.Level = LogText, slog.LevelInfo
	if p := fl.Format; p != nil {
		switch f := strings.ToLower(*p); f {
		case LogText, LogJSON:
			l.Format = f
		default:
			v.errorf("log.format", `log.format is %q, but it must be "text" or "json"`, *p)
		}
	}
	if p := fl.Level; p != nil {
		if lv, ok := logLevels[strings.ToLower(*p)]; ok {
			l.Level = lv
		} else {
			v.errorf("log.level", `log.level is %q, but it must be "debug", "info", "warn" or "error"`, *p)
		}
	}
}
