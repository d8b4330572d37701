// Directory mode (DESIGN.md §9): each message is written to
// <directory>/<id>.eml (the exact bytes that would be sent), then
// <directory>/<id>.json ({"mail_from": ..., "rcpt_to": [...]}), each through a
// temporary file, fsync and rename, so a reader that sees the .json sees a
// complete .eml. The queue entry is marked delivered only after both files
// are durable; a crash in between writes the same files again under the same
// id, so nothing is lost and nothing appears twice.

package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/supportgate/supportgate/store"
)

// batchSize is how many queued messages one pass takes.
const batchSize = 100

// retryAfter is how long the worker waits after a failed pass.
const retryAfter = 30 * time.Second

// Envelope is the content of a <id>.json file.
type Envelope struct {
	MailFrom string   `json:"mail_from"`
	RcptTo   []string `json:"rcpt_to"`
}

// DirectoryWorker writes queued messages into a directory.
type DirectoryWorker struct {
	Store     store.Store
	Directory string
	Log       *slog.Logger

	counters Counters
}

// Stats implements Metrics: a recipient whose message was written counts
// as delivered, one whose write failed as deferred.
func (w *DirectoryWorker) Stats(ctx context.Context) (Stats, error) {
	return w.counters.stats(ctx, w.Store)
}

// Run delivers until ctx is cancelled, waking when messages are queued
// (the Queue changes of the store's feed, DESIGN.md §13).
func (w *DirectoryWorker) Run(ctx context.Context) error {
	if err := os.MkdirAll(w.Directory, 0o750); err != nil {
		return fmt.Errorf("queue: creating outbox directory: %w", err)
	}
	queued := w.Store.Subscribe(store.Filter{Queue: true})
	defer queued.Close()
	for {
		changed := queued.Changed()
		wait := changed
		if err := w.Pass(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			w.Log.Error("outbound directory delivery failed; will retry", "err", err, "retry_in", retryAfter)
			wait = nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wait:
		case <-time.After(retryAfter):
		}
	}
}

// Pass delivers everything queued now.
func (w *DirectoryWorker) Pass(ctx context.Context) error {
	for {
		batch, err := w.Store.PendingDeliveries(ctx, batchSize)
		if err != nil {
			return err
		}
		for _, d := range batch {
			if err := w.write(d); err != nil {
				w.counters.deferred.Add(int64(len(d.Recipients)))
				return err
			}
			if err := w.Store.MarkDelivered(ctx, d.ID); err != nil {
				return err
			}
			w.counters.delivered.Add(int64(len(d.Recipients)))
			w.Log.Info("outbound message written", "queue_id", d.ID, "message", d.Message, "from", d.MailFrom,
				"rcpt", strings.Join(d.Recipients, ","), "directory", w.Directory)
		}
		if len(batch) < batchSize {
			return nil
		}
	}
}

func (w *DirectoryWorker) write(d store.Delivery) error {
	base := filepath.Join(w.Directory, strconv.FormatInt(d.ID, 10))
	// The .eml must be durable before the .json that announces it appears.
	if err := writeFileSync(base+".eml", d.Raw); err != nil {
		return err
	}
	if err := syncDir(w.Directory); err != nil {
		return err
	}
	env, err := json.Marshal(Envelope{MailFrom: d.MailFrom, RcptTo: d.Recipients})
	if err != nil {
		return err
	}
	if err := writeFileSync(base+".json", append(env, '\n')); err != nil {
		return err
	}
	return syncDir(w.Directory)
}

// writeFileSync writes data to path atomically and durably.
func writeFileSync(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("queue: writing %s: %w", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("queue: syncing %s: %w", dir, err)
	}
	return nil
}
