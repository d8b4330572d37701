package main

// The administrator's commands beside the daemon (DESIGN.md §11): flags
// here, the work in internal/admin.

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/internal/admin"
	"github.com/supportgate/supportgate/store/sqlite"
)

// parseInterspersed parses fl's flags wherever they stand among args
// ("backup DIR -config FILE" as well as "backup -config FILE DIR") and
// returns the other arguments.
func parseInterspersed(fl *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fl.Parse(args); err != nil {
			return nil, err
		}
		if fl.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fl.Arg(0))
		args = fl.Args()[1:]
	}
}

// commandConfig loads the configuration of a command other than serve: -config,
// else ./supportgate.toml, else /etc/supportgate/supportgate.toml, else the
// demo, which it announces on stderr (DESIGN.md §11).
func commandConfig(path string, stderr io.Writer) (*config.Config, error) {
	cfg, err := admin.LoadConfig(path)
	if err != nil {
		return nil, err
	}
	if cfg.Demo {
		fmt.Fprintln(stderr, admin.DemoNotice(cfg))
	}
	return cfg, nil
}

// openStore opens the store of a configuration, for the commands that work
// beside the daemon. A data directory without a database is an error: the
// command would otherwise create an empty store somewhere unexpected.
func openStore(ctx context.Context, configPath string, stderr io.Writer) (*sqlite.Store, error) {
	cfg, err := commandConfig(configPath, stderr)
	if err != nil {
		return nil, err
	}
	if err := admin.RequireStore(cfg); err != nil {
		return nil, err
	}
	return sqlite.Open(ctx, cfg.Server.DataDir)
}

// checkConfig is `supportgate check-config [FILE | -config FILE]`: the file
// parses and validates (config), and what it names opens (admin.Check).
func checkConfig(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fl.SetOutput(stderr)
	configPath := fl.String("config", "", "configuration file")
	pos, err := parseInterspersed(fl, args)
	if err != nil {
		return 2
	}
	switch {
	case len(pos) == 1 && *configPath == "":
		*configPath = pos[0]
	case len(pos) != 0:
		fmt.Fprint(stderr, "usage: supportgate check-config [FILE | -config FILE]\n")
		return 2
	}
	path, err := admin.FindConfig(*configPath)
	if err != nil {
		fmt.Fprintln(stderr, "supportgate:", err)
		return 1
	}
	if path == "" {
		fmt.Fprintf(stderr, "supportgate check-config: no configuration file: give one, or create ./%s or %s\n", admin.LocalConfig, admin.SystemConfig)
		return 2
	}
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	warnings, err := admin.Check(cfg, time.Now())
	for _, w := range warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: OK (%d inboxes, %d agents)\n", path, len(cfg.Inboxes), len(cfg.Agents))
	return 0
}

// passwd is `supportgate passwd`.
func passwd(stdin io.Reader, stdout, stderr io.Writer) int {
	pw, err := admin.ReadPassword(stdin, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "supportgate:", err)
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

// dnsCommand is `supportgate dns [-config FILE] [-ip ADDRESS,...]`.
func dnsCommand(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("dns", flag.ContinueOnError)
	fl.SetOutput(stderr)
	configPath := fl.String("config", "", "configuration file")
	ipList := fl.String("ip", "", "the server's public addresses, comma-separated (default: the listen addresses that are public)")
	pos, err := parseInterspersed(fl, args)
	if err != nil {
		return 2
	}
	if len(pos) != 0 {
		fmt.Fprint(stderr, "usage: supportgate dns [-config FILE] [-ip ADDRESS,...]\n")
		return 2
	}
	var ips []net.IP
	for _, s := range strings.Split(*ipList, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		ip := net.ParseIP(s)
		if ip == nil {
			fmt.Fprintf(stderr, "supportgate dns: -ip %q is not an IP address\n", s)
			return 2
		}
		ips = append(ips, ip)
	}
	cfg, err := commandConfig(*configPath, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "supportgate:", err)
		return 1
	}
	out, err := admin.Records(cfg, ips)
	fmt.Fprint(stdout, out)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

// dkimKeygen is `supportgate dkim-keygen [-type rsa|ed25519] FILE`.
func dkimKeygen(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("dkim-keygen", flag.ContinueOnError)
	fl.SetOutput(stderr)
	kind := fl.String("type", "rsa", "rsa (2048 bits, what every receiver verifies) or ed25519")
	pos, err := parseInterspersed(fl, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprint(stderr, "usage: supportgate dkim-keygen [-type rsa|ed25519] FILE\n")
		return 2
	}
	record, err := admin.GenerateDKIMKey(*kind, pos[0])
	if err != nil {
		fmt.Fprintln(stderr, "supportgate dkim-keygen:", err)
		return 1
	}
	fmt.Fprintf(stderr, "supportgate: wrote a new %s key to %s (mode 0600). Publish this TXT record at <selector>._domainkey.<inbox domain>,\n"+
		"set [dkim] selector and private_key_file, and `supportgate dns` prints the records with their names:\n", *kind, pos[0])
	fmt.Fprintln(stdout, record)
	return 0
}

// backupCommand is `supportgate backup [-config FILE] DIR`.
func backupCommand(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("backup", flag.ContinueOnError)
	fl.SetOutput(stderr)
	configPath := fl.String("config", "", "configuration file")
	pos, err := parseInterspersed(fl, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprint(stderr, "usage: supportgate backup [-config FILE] DIR\n")
		return 2
	}
	cfg, err := commandConfig(*configPath, stderr)
	if err == nil {
		err = admin.RequireStore(cfg)
	}
	if err != nil {
		fmt.Fprintln(stderr, "supportgate:", err)
		return 1
	}
	files, err := admin.Backup(context.Background(), cfg, pos[0])
	if err != nil {
		fmt.Fprintln(stderr, "supportgate backup:", err)
		return 1
	}
	for _, f := range files {
		fmt.Fprintln(stdout, "wrote", f)
	}
	return 0
}
