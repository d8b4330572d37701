package cli

// The administrator's commands beside the daemon (DESIGN.md §11): their
// arguments here, their work in internal/admin.

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/internal/admin"
)

// checkConfig is `supportgate check-config [FILE | -config FILE]`: the file
// parses and validates (config), and what it names opens (admin.Check).
func (c *CLI) checkConfig(args []string) int {
	const usage = "usage: supportgate check-config [FILE | -config FILE]\n"
	fl := c.flags("check-config", usage)
	configPath := fl.String("config", "", "configuration file")
	pos, code, ok := parse(fl, args)
	if !ok {
		return code
	}
	switch {
	case len(pos) == 1 && *configPath == "":
		*configPath = pos[0]
	case len(pos) != 0:
		fmt.Fprint(c.Stderr, usage)
		return 2
	}
	path, err := admin.FindConfig(*configPath)
	if err != nil {
		return c.fail(err)
	}
	if path == "" {
		fmt.Fprintf(c.Stderr, "supportgate check-config: no configuration file: give one, or create ./%s or %s\n", admin.LocalConfig, admin.SystemConfig)
		return 2
	}
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(c.Stderr, err) // file:line: sentence
		return 1
	}
	warnings, err := admin.Check(cfg, time.Now())
	for _, w := range warnings {
		fmt.Fprintln(c.Stderr, "warning:", w)
	}
	if err != nil {
		fmt.Fprintln(c.Stderr, err)
		return 1
	}
	fmt.Fprintf(c.Stdout, "%s: OK (%d inboxes, %d agents)\n", path, len(cfg.Inboxes), len(cfg.Agents))
	return 0
}

// passwd is `supportgate passwd`: a password on standard input (on a
// terminal: asked twice, not echoed), its hash on standard output.
func (c *CLI) passwd(args []string) int {
	const usage = "usage: supportgate passwd\n"
	fl := c.flags("passwd", usage)
	pos, code, ok := parse(fl, args)
	if !ok {
		return code
	}
	if len(pos) != 0 {
		fmt.Fprint(c.Stderr, usage)
		return 2
	}
	pw, err := admin.ReadPassword(c.Stdin, c.Stderr)
	if err != nil {
		return c.fail(err)
	}
	hash, err := config.HashPassword(pw)
	if err != nil {
		return c.fail(err)
	}
	fmt.Fprintln(c.Stdout, hash)
	return 0
}

// dns is `supportgate dns [-config FILE] [-ip ADDRESS,...]`.
func (c *CLI) dns(args []string) int {
	const usage = "usage: supportgate dns [-config FILE] [-ip ADDRESS,...]\n"
	fl := c.flags("dns", usage)
	configPath := fl.String("config", "", "configuration file")
	ipList := fl.String("ip", "", "the server's public addresses, comma-separated (default: the listen addresses that are public)")
	pos, code, ok := parse(fl, args)
	if !ok {
		return code
	}
	if len(pos) != 0 {
		fmt.Fprint(c.Stderr, usage)
		return 2
	}
	var ips []net.IP
	for _, s := range strings.Split(*ipList, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		ip := net.ParseIP(s)
		if ip == nil {
			fmt.Fprintf(c.Stderr, "supportgate dns: -ip %q is not an IP address\n", s)
			return 2
		}
		ips = append(ips, ip)
	}
	cfg, err := c.config(*configPath)
	if err != nil {
		return c.fail(err)
	}
	out, err := admin.Records(cfg, ips)
	fmt.Fprint(c.Stdout, out)
	if err != nil {
		fmt.Fprintln(c.Stderr, err)
		return 1
	}
	return 0
}

// dkimKeygen is `supportgate dkim-keygen [-type rsa|ed25519] FILE`.
func (c *CLI) dkimKeygen(args []string) int {
	const usage = "usage: supportgate dkim-keygen [-type rsa|ed25519] FILE\n"
	fl := c.flags("dkim-keygen", usage)
	kind := fl.String("type", "rsa", "rsa (2048 bits, what every receiver verifies) or ed25519")
	pos, code, ok := parse(fl, args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprint(c.Stderr, usage)
		return 2
	}
	record, err := admin.GenerateDKIMKey(*kind, pos[0])
	if err != nil {
		fmt.Fprintln(c.Stderr, "supportgate dkim-keygen:", err)
		return 1
	}
	fmt.Fprintf(c.Stderr, "supportgate: wrote a new %s key to %s (mode 0600). Publish this TXT record at <selector>._domainkey.<inbox domain>,\n"+
		"set [dkim] selector and private_key_file, and `supportgate dns` prints the records with their names:\n", *kind, pos[0])
	fmt.Fprintln(c.Stdout, record)
	return 0
}

// backup is `supportgate backup [-config FILE] DIR`.
func (c *CLI) backup(args []string) int {
	const usage = "usage: supportgate backup [-config FILE] DIR\n"
	fl := c.flags("backup", usage)
	configPath := fl.String("config", "", "configuration file")
	pos, code, ok := parse(fl, args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprint(c.Stderr, usage)
		return 2
	}
	cfg, err := c.config(*configPath)
	if err == nil {
		err = admin.RequireStore(cfg)
	}
	if err != nil {
		return c.fail(err)
	}
	files, err := admin.Backup(context.Background(), cfg, pos[0])
	if err != nil {
		fmt.Fprintln(c.Stderr, "supportgate backup:", err)
		return 1
	}
	for _, f := range files {
		fmt.Fprintln(c.Stdout, "wrote", f)
	}
	return 0
}
