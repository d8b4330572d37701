// Command supportgate is the support team's mail server: MX, submission,
// IMAP and the outbound queue in one daemon (see DESIGN.md). This file only
// parses the command line and wires the packages together.
//
// Imports: everything it wires (config, the engines store/sqlite and
// store/postgres, gateway, queue, internal/cli for the commands beside
// serve); nothing imports it.
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/gateway"
	"github.com/supportgate/supportgate/gateway/imapgw"
	"github.com/supportgate/supportgate/internal/admin"
	"github.com/supportgate/supportgate/internal/cli"
	"github.com/supportgate/supportgate/internal/dkimsign"
	"github.com/supportgate/supportgate/internal/memlimit"
	"github.com/supportgate/supportgate/internal/metrics"
	"github.com/supportgate/supportgate/queue"
	"github.com/supportgate/supportgate/store"
	"github.com/supportgate/supportgate/threading"
)

// version and revision are set at build time with -ldflags "-X
// main.version=... -X main.revision=..." (packaging/build-deb.sh);
// revision only counts where go build stamps none (admin.Version).
var version, revision = "", ""

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run runs the command of args: serve here, the others in internal/cli.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "serve" {
		return serve(args[1:], stderr)
	}
	c := &cli.CLI{Stdin: stdin, Stdout: stdout, Stderr: stderr, Version: admin.Version(version, revision), OpenStore: openStore}
	return c.Run(args)
}

// openStore opens the store of a configuration for the commands beside the
// daemon: the SQLite engine in a data directory that has a database, or
// the PostgreSQL database of [store].
func openStore(ctx context.Context, cfg *config.Config) (cli.Store, error) {
	if cfg.Store.Engine != config.StorePostgres {
		if err := admin.RequireStore(cfg); err != nil {
			return nil, err
		}
	}
	st, err := openEngine(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return st, nil
}

// softMemoryHeadroom is what the Go heap may hold beyond
// max_inflight_bytes before the collector works harder: the store's, the
// sessions' and the caches' memory.
const softMemoryHeadroom = 128 << 20

func serve(args []string, stderr io.Writer) int {
	fl := flag.NewFlagSet("serve", flag.ContinueOnError)
	fl.SetOutput(stderr)
	configPath := fl.String("config", "", "configuration file (default: ./supportgate.toml, else /etc/supportgate/supportgate.toml, else the embedded demo)")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	cfg, err := admin.LoadConfig(*configPath)
	if err != nil {
		fmt.Fprintln(stderr, "supportgate:", err)
		return 1
	}
	log, level := newLogger(stderr, cfg.Log) // [log]: logging.go
	// What check-config opens, opened now: a missing certificate or a bad
	// DKIM key stops the daemon with the same file:line: sentence.
	warnings, err := admin.Check(cfg, time.Now())
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	for _, w := range warnings {
		log.Warn(w)
	}
	if cfg.Demo {
		if err := cfg.CheckLoopback(); err != nil {
			fmt.Fprintln(stderr, "supportgate: the demo configuration runs on loopback only:", err)
			return 1
		}
		log.Info("running the embedded demo configuration; agents alice@example.test (demo-alice), bob@example.test (demo-bob), carol@example.test (demo-carol)")
	}
	log.Info("configuration loaded", "source", cfg.Source, "data_dir", cfg.Server.DataDir)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// DESIGN.md §8: memory is bounded as a whole. max_inflight_bytes bounds
	// the message data held at once; the soft limit makes the collector
	// return what handling that data made (copies, parses) before the heap
	// doubles, and grows with a live heap that passes it (the pictures of
	// big folders), which the collector must not chase (internal/memlimit).
	// GOMEMLIMIT in the environment wins.
	if os.Getenv("GOMEMLIMIT") == "" {
		go memlimit.Keep(ctx, cfg.Limits.MaxInflightBytes+softMemoryHeadroom, time.Second)
	}
	hup, stopHUP := notifyHUP()
	defer stopHUP()

	st, err := openEngine(ctx, cfg) // engine.go
	if err != nil {
		fmt.Fprintln(stderr, "supportgate:", err)
		return 1
	}
	defer st.Close()
	// Messages stored from now on get their FETCH metadata when they are
	// stored, not at their first FETCH (gateway/imapgw/meta.go).
	st.SetMetaFunc(imapgw.MessageMeta)
	keys, err := tokenKeys(ctx, cfg, st) // engine.go
	if err != nil {
		fmt.Fprintln(stderr, "supportgate:", err)
		return 1
	}

	if cfg.DKIM.Selector != "" {
		// Fail now rather than at the first reply.
		signer, err := dkimsign.Load(cfg.DKIM.Selector, cfg.DKIM.PrivateKeyFile)
		if err != nil {
			fmt.Fprintln(stderr, "supportgate:", err)
			return 1
		}
		log.Info("DKIM signing", "selector", signer.Selector, "engine", signer.Engine, "note", signer.EngineNote)
	}
	out := &outbound{st: st, keys: keys, log: log.With("service", "outbound")}
	if err := out.start(ctx, cfg); err != nil {
		fmt.Fprintln(stderr, "supportgate:", err)
		return 1
	}

	// DESIGN.md §16: one registry for the daemon, read by /metrics.
	m := metrics.New(metrics.Options{Store: st, Queue: out, DataDir: cfg.Server.DataDir, Log: log.With("service", "http")})
	st.ObserveCommits(m.ObserveCommit)

	// SIGTERM: the listeners close (IMAP sessions get BYE), the queue
	// starts no new attempt and lets those in flight finish within its
	// grace; the rest stays queued. SIGHUP: reload.go.
	gw := gateway.New(cfg, st, keys, log, gateway.WithMetrics(m))
	notified := make(chan struct{})
	go func() {
		defer close(notified)
		gw.RunNotifier(ctx) // follower notifications (DESIGN.md §7)
	}()
	source := ""
	if !cfg.Demo {
		source = cfg.Source
	}
	go reloadOnHUP(ctx, hup, source, gw, out, level, log)
	err = gw.Run(ctx)
	stop()
	out.wait()
	<-notified
	if err != nil {
		fmt.Fprintln(stderr, "supportgate:", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

// runner is an outbound worker.
type runner interface {
	Run(ctx context.Context) error
	queue.Metrics // its delivery counts, for /metrics
}

// outboundWorker builds the worker of the configured outbound mode.
func outboundWorker(cfg *config.Config, st store.Store, keys threading.Keys, log *slog.Logger) (runner, error) {
	o := cfg.Outbound
	w := &queue.Worker{Store: st, Keys: keys, Retry: o.Retry, GiveUpAfter: o.GiveUpAfter, Log: log,
		MaxConnections: o.MaxConnections, MaxPerRoute: o.MaxConnectionsPerDomain}
	switch o.Mode {
	case "directory":
		log.Info("outbound mail is written to a directory", "directory", o.Directory)
		return &queue.DirectoryWorker{Store: st, Directory: o.Directory, Log: log}, nil
	case "relay":
		if o.RelayCredentialsFile != "" {
			if _, err := queue.ReadCredentials(o.RelayCredentialsFile); err != nil {
				return nil, err
			}
		}
		if o.RelayCAFile != "" {
			if _, err := queue.LoadCAFile(o.RelayCAFile); err != nil {
				return nil, err
			}
		}
		w.Transport = &queue.RelayTransport{Hostname: cfg.Server.Hostname, Relay: o.Relay, CredentialsFile: o.RelayCredentialsFile,
			CAFile: o.RelayCAFile}
		log.Info("outbound mail goes through a relay", "relay", o.Relay, "auth", o.RelayCredentialsFile != "", "ca_file", o.RelayCAFile)
	default:
		t := &queue.MXTransport{Hostname: cfg.Server.Hostname}
		if r := cfg.DNS.Resolver; r != "" {
			t.Resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, r)
			}}
		}
		w.Transport = t
		log.Info("outbound mail goes to the recipients' MX hosts", "resolver", cmp.Or(cfg.DNS.Resolver, "system"))
	}
	return w, nil
}
