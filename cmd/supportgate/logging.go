package main

import (
	"io"
	"log/slog"

	"github.com/supportgate/supportgate/config"
)

// newLogger returns the daemon's logger as [log] says: slog's text or JSON
// handler at the configured level. The level is a LevelVar, so that a
// reload of the configuration can change it; the format needs a restart.
func newLogger(w io.Writer, c config.Log) (*slog.Logger, *slog.LevelVar) {
	level := new(slog.LevelVar)
	level.Set(c.Level)
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	if c.Format == config.LogJSON {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(h), level
}
