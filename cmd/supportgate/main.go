// Command supportgate is the support team's mail server: MX, submission,
// IMAP and the outbound queue in one daemon (see DESIGN.md). This file only
// parses the command line and wires the packages together.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/gateway"
	"github.com/supportgate/supportgate/queue"
	"github.com/supportgate/supportgate/store"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

const usage = `usage:
  supportgate serve [-config FILE]   run the daemon (default: ./supportgate.toml, else the embedded demo)
  supportgate check-config FILE      validate a configuration file
  supportgate passwd                 read a password on standard input, print its hash
  supportgate version                print the version
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stderr)
	case "check-config":
		return checkConfig(args[1:], stdout, stderr)
	case "passwd":
		return passwd(stdin, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "supportgate", versionString())
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "supportgate: unknown command %q\n%s", args[0], usage)
	return 2
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// loadConfig picks the configuration: -config FILE, else ./supportgate.toml,
// else the embedded demo (DESIGN.md §11).
func loadConfig(path string) (*config.Config, error) {
	if path != "" {
		return config.Load(path)
	}
	const local = "supportgate.toml"
	if _, err := os.Stat(local); err == nil {
		return config.Load(local)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return config.Demo()
}

func serve(args []string, stderr io.Writer) int {
	fl := flag.NewFlagSet("serve", flag.ContinueOnError)
	fl.SetOutput(stderr)
	configPath := fl.String("config", "", "configuration file (default: ./supportgate.toml, else the embedded demo)")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg, err := loadConfig(*configPath)
	if err != nil {
		fmt.Fprintln(stderr, "supportgate:", err)
		return 1
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

	st, err := store.OpenSQLite(ctx, cfg.Server.DataDir)
	if err != nil {
		fmt.Fprintln(stderr, "supportgate:", err)
		return 1
	}
	defer st.Close()
	keys, err := gateway.LoadKeys(cfg.Server.DataDir)
	if err != nil {
		fmt.Fprintln(stderr, "supportgate:", err)
		return 1
	}

	done := make(chan struct{})
	switch cfg.Outbound.Mode {
	case "directory":
		w := &queue.DirectoryWorker{Store: st, Directory: cfg.Outbound.Directory, Log: log.With("service", "outbound")}
		log.Info("outbound mail is written to a directory", "directory", cfg.Outbound.Directory)
		go func() {
			defer close(done)
			if err := w.Run(ctx); err != nil {
				log.Error("outbound worker stopped", "err", err)
			}
		}()
	default:
		close(done)
		log.Warn("outbound mode is not implemented yet: replies are recorded and stay queued until it is", "mode", cfg.Outbound.Mode)
	}

	err = gateway.New(cfg, st, keys, log).Run(ctx)
	stop()
	<-done
	if err != nil {
		fmt.Fprintln(stderr, "supportgate:", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

func checkConfig(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprint(stderr, "usage: supportgate check-config FILE\n")
		return 2
	}
	cfg, err := config.Load(args[0])
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: OK (%d inboxes, %d agents)\n", args[0], len(cfg.Inboxes), len(cfg.Agents))
	return 0
}

func passwd(stdin io.Reader, stdout, stderr io.Writer) int {
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		fmt.Fprintln(stderr, "supportgate: reading the password:", err)
		return 1
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		fmt.Fprintln(stderr, "supportgate: the password is empty; type it on standard input")
		return 1
	}
	hash, err := config.HashPassword(pw)
	if err != nil {
		fmt.Fprintln(stderr, "supportgate:", err)
		return 1
	}
	fmt.Fprintln(stdout, hash)
	return 0
}
