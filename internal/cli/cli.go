// Package cli is supportgate's command line beside the daemon (DESIGN.md
// §11): `conversations list|show`, `queue list|retry|drop`, and the
// administrator's commands (check-config, passwd, dns, dkim-keygen, backup,
// migrate-store, version), whose work is in internal/admin. `serve` is not here: it is the
// wiring of the daemon, in cmd/supportgate.
//
// It owns the commands' arguments, outputs and exit codes: 0 done, 1 the
// command failed, 2 a usage error. Each command parses its arguments with a
// flag.FlagSet that refuses unknown flags (a prefix such as --statusx is no
// --status), takes -flag and --flag alike, and flags after the positional
// arguments (`show 12 --json`). Lists read the store in pages
// (store.ConversationStore.ListConversations, store.QueueStore.QueuePage)
// and print every row.
//
// It may import config, queue (the outbound lifecycle: retry, drop), store
// (the contract) and internal/admin; nothing imports it but
// cmd/supportgate. The commands on conversations and the queue name no
// engine: the caller opens the store (CLI.OpenStore). internal/admin still
// knows SQLite's files, for backup and admin.RequireStore.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/internal/admin"
	"github.com/supportgate/supportgate/store"
)

// Usage is the command line's help, printed by `supportgate help` and with
// an unknown command.
const Usage = `usage:
  supportgate serve [-config FILE]   run the daemon
  supportgate check-config [FILE]    validate a configuration and open what it names
  supportgate passwd                 read a password (on a terminal: twice, not echoed), print its hash
  supportgate queue list [--all] [--limit N] [--json] [-config FILE]
                                     the outbound queue: recipients not delivered (--all: every one)
  supportgate queue retry ID [-config FILE]
                                     make queue entry ID due now, failed recipients included
  supportgate queue drop ID [-config FILE]
                                     stop delivering queue entry ID; the team gets an event
  supportgate conversations list [--status open|closed|spam] [--limit N] [--json] [-config FILE]
                                     the conversations, newest first
  supportgate conversations show ID [--json] [-config FILE]
                                     one conversation with its people and messages
  supportgate dns [-config FILE] [-ip ADDRESS,...]
                                     the DNS records to publish, in zone-file syntax
  supportgate dkim-keygen [-type rsa|ed25519] FILE
                                     write a new DKIM private key, print its TXT record
  supportgate backup [-config FILE] DIR
                                     copy the store and the token key into DIR, beside the daemon
  supportgate migrate-store [-config FILE] [-dsn DSN]
                                     copy the SQLite store and the token key into an empty PostgreSQL
                                     database (-dsn, else [store] dsn), keeping numbers and UIDs
  supportgate version                print the release and the revision it was built from

Without -config: ./supportgate.toml, else /etc/supportgate/supportgate.toml, else the embedded demo.
`

// defaultPage is how many rows a list reads from the store at once. A
// table is aligned within each page, so lists of up to this many rows print
// as one table, and memory stays bounded whatever the list's length.
const defaultPage = 1000

// Store is what the commands need of the store.
type Store interface {
	store.Reports
	store.QueueAdmin
	Close() error
}

// CLI runs commands. Its zero value is not usable: Stdout, Stderr and
// OpenStore are required.
type CLI struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Version is what `supportgate version` prints after the name: the
	// release and the revision (admin.Version).
	Version string
	// OpenStore opens the store of a configuration for the commands that
	// work beside the daemon. The caller chooses the engine; a
	// configuration without a store is an error, never a new empty store
	// (admin.RequireStore).
	OpenStore func(ctx context.Context, cfg *config.Config) (Store, error)

	// page is the list page size; 0 is defaultPage (tests make it small).
	page int
}

func (c *CLI) pageSize() int {
	if c.page > 0 {
		return c.page
	}
	return defaultPage
}

// Run runs the command of args (without the program name) and returns its
// exit code. "serve" is the caller's.
func (c *CLI) Run(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(c.Stderr, Usage)
		return 2
	}
	rest := args[1:]
	switch args[0] {
	case "check-config":
		return c.checkConfig(rest)
	case "passwd":
		return c.passwd(rest)
	case "queue":
		return c.queue(rest)
	case "conversations":
		return c.conversations(rest)
	case "dns":
		return c.dns(rest)
	case "dkim-keygen":
		return c.dkimKeygen(rest)
	case "backup":
		return c.backup(rest)
	case "migrate-store":
		return c.migrateStore(rest)
	case "version":
		fmt.Fprintln(c.Stdout, "supportgate", c.Version)
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(c.Stdout, Usage)
		return 0
	}
	fmt.Fprintf(c.Stderr, "supportgate: unknown command %q\n%s", args[0], Usage)
	return 2
}

// flags returns a command's FlagSet: errors go to stderr, followed by the
// command's usage line.
func (c *CLI) flags(name, usage string) *flag.FlagSet {
	fl := flag.NewFlagSet(name, flag.ContinueOnError)
	fl.SetOutput(c.Stderr)
	fl.Usage = func() { fmt.Fprint(c.Stderr, usage) }
	return fl
}

// parse parses fl's flags wherever they stand among args ("backup DIR
// -config FILE" as well as "backup -config FILE DIR"; "--" ends the flags)
// and returns the other arguments. ok false is a usage error (exit 2),
// already reported; code is the exit code then: 0 for -h.
func parse(fl *flag.FlagSet, args []string) (pos []string, code int, ok bool) {
	for {
		if err := fl.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, 0, false
			}
			return nil, 2, false
		}
		rest := fl.Args()
		if len(rest) == 0 {
			return pos, 0, true
		}
		// fl.Parse stops at the first non-flag, or after "--": after
		// "--" everything is positional.
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), 0, true
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// config loads the configuration of a command other than serve: -config,
// else ./supportgate.toml, else /etc/supportgate/supportgate.toml, else the
// demo, which it announces on stderr (DESIGN.md §11).
func (c *CLI) config(path string) (*config.Config, error) {
	cfg, err := admin.LoadConfig(path)
	if err != nil {
		return nil, err
	}
	if cfg.Demo {
		fmt.Fprintln(c.Stderr, admin.DemoNotice(cfg))
	}
	return cfg, nil
}

// openStore opens the store of the configuration at path.
func (c *CLI) openStore(ctx context.Context, path string) (Store, error) {
	cfg, err := c.config(path)
	if err != nil {
		return nil, err
	}
	return c.OpenStore(ctx, cfg)
}

// fail reports err as the command's failure (exit 1).
func (c *CLI) fail(err error) int {
	fmt.Fprintln(c.Stderr, "supportgate:", err)
	return 1
}

// oneLine is s with its runs of white space made one space: a remote
// answer in a table cell.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
