package cli

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/supportgate/supportgate/internal/admin"
)

// migrateStore is `supportgate migrate-store [-config FILE] [-dsn DSN]`:
// the SQLite store of the data directory into an empty PostgreSQL
// database (issue 16), with what it copied on standard output.
func (c *CLI) migrateStore(args []string) int {
	const usage = "usage: supportgate migrate-store [-config FILE] [-dsn DSN]\n"
	fl := c.flags("migrate-store", usage)
	configPath := fl.String("config", "", "configuration file")
	dsn := fl.String("dsn", "", "the PostgreSQL database to copy into (default: [store] dsn)")
	pos, code, ok := parse(fl, args)
	if !ok {
		return code
	}
	if len(pos) != 0 {
		fmt.Fprint(c.Stderr, usage)
		return 2
	}
	cfg, err := c.config(*configPath)
	if err != nil {
		return c.fail(err)
	}
	rep, err := admin.MigrateStore(context.Background(), cfg, *dsn)
	if err != nil {
		fmt.Fprintln(c.Stderr, "supportgate migrate-store:", err)
		return 1
	}
	tw := tabwriter.NewWriter(c.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "ROWS\tTABLE\t")
	for _, t := range rep.Tables {
		fmt.Fprintf(tw, "%d\t%s\t\n", t.Rows, t.Table)
	}
	tw.Flush()
	tw = tabwriter.NewWriter(c.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "CONTINUES AFTER\tSEQUENCE\t")
	for _, s := range rep.Sequences {
		fmt.Fprintf(tw, "%d\t%s\t\n", s.Rows, s.Table)
	}
	tw.Flush()
	for _, s := range rep.Secrets {
		fmt.Fprintln(c.Stdout, "copied the shared secret", s)
	}
	fmt.Fprintf(c.Stdout, "migrated %s into PostgreSQL; set [store] engine = \"postgres\" and dsn, then start supportgate\n", cfg.Server.DataDir)
	return 0
}
