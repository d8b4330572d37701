package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"reflect"
	"sync"
	"syscall"
	"time"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/gateway"
	"github.com/supportgate/supportgate/internal/admin"
	"github.com/supportgate/supportgate/queue"
	"github.com/supportgate/supportgate/store"
	"github.com/supportgate/supportgate/threading"
)

// outbound runs the outbound worker of a configuration, and replaces it
// when a reload changes [outbound] or [dns]: the old one starts no new
// attempt and lets those in flight finish, as on SIGTERM.
type outbound struct {
	st   store.Store
	keys threading.Keys
	log  *slog.Logger

	mu     sync.Mutex
	cfg    *config.Config
	worker runner
	cancel context.CancelFunc
	done   chan struct{}
	// counted is what the workers replaced by reloads delivered, so that
	// the counters of /metrics never go down.
	counted queue.Stats
}

// Stats is queue.Metrics across reloads: the current worker's counts plus
// those of the workers it replaced.
func (o *outbound) Stats(ctx context.Context) (queue.Stats, error) {
	o.mu.Lock()
	w, counted := o.worker, o.counted
	o.mu.Unlock()
	st, err := w.Stats(ctx)
	st.Delivered += counted.Delivered
	st.Deferred += counted.Deferred
	st.Failed += counted.Failed
	return st, err
}

func (o *outbound) start(ctx context.Context, cfg *config.Config) error {
	w, err := outboundWorker(cfg, o.st, o.keys, o.log)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := w.Run(wctx); err != nil {
			o.log.Error("outbound worker stopped", "err", err)
		}
	}()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.worker != nil { // replaced: keep what it counted
		if st, err := o.worker.Stats(ctx); err == nil {
			o.counted.Delivered += st.Delivered
			o.counted.Deferred += st.Deferred
			o.counted.Failed += st.Failed
		}
	}
	o.cfg, o.worker, o.cancel, o.done = cfg, w, cancel, done
	return nil
}

// reload replaces the worker when the delivery settings changed.
func (o *outbound) reload(ctx context.Context, cfg *config.Config) error {
	o.mu.Lock()
	same := reflect.DeepEqual(o.cfg.Outbound, cfg.Outbound) && o.cfg.DNS == cfg.DNS
	cancel, done := o.cancel, o.done
	o.mu.Unlock()
	if same {
		return nil
	}
	cancel()
	<-done
	return o.start(ctx, cfg)
}

// wait waits for the worker to stop (after ctx ended).
func (o *outbound) wait() {
	o.mu.Lock()
	done := o.done
	o.mu.Unlock()
	<-done
}

// notifyHUP takes SIGHUP from now on (Go's default would end the daemon).
func notifyHUP() (hup chan os.Signal, stop func()) {
	hup = make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	return hup, func() { signal.Stop(hup) }
}

// reloadOnHUP reads the configuration file again on every SIGHUP until ctx
// ends (DESIGN.md §11). A file that fails check-config (config.Load and
// admin.Check) is not applied, and the daemon goes on with the one it
// has; the log says which, and why.
func reloadOnHUP(ctx context.Context, hup <-chan os.Signal, source string, gw *gateway.Server, out *outbound, level *slog.LevelVar, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		if source == "" {
			log.Warn("SIGHUP: the embedded demo configuration has no file to read again; nothing changed")
			continue
		}
		cfg, err := config.Load(source)
		if err == nil {
			// What check-config opens (certificates, DKIM key, relay files,
			// data_dir) and the demo-password rule, as at start.
			var warnings []string
			warnings, err = admin.Check(cfg, time.Now())
			for _, w := range warnings {
				log.Warn(w)
			}
		}
		if err != nil {
			log.Error("SIGHUP: the configuration was not reloaded; the daemon goes on with the previous one", "file", source, "err", err)
			continue
		}
		restart, err := gw.Reload(cfg)
		if err != nil {
			log.Error("SIGHUP: the configuration was not reloaded; the daemon goes on with the previous one", "file", source, "err", err)
			continue
		}
		if err := out.reload(ctx, cfg); err != nil {
			log.Error("SIGHUP: the outbound settings could not be applied; deliveries wait for a restart", "err", err)
		}
		level.Set(cfg.Log.Level) // [log] level at once; a new format needs a restart
		log.Info("configuration reloaded", "file", source, "inboxes", len(cfg.Inboxes), "agents", len(cfg.Agents))
		if len(restart) > 0 {
			log.Warn("SIGHUP: these settings changed but take effect only after a restart", "keys", restart)
		}
	}
}
