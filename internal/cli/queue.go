package cli

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/supportgate/supportgate/queue"
	"github.com/supportgate/supportgate/store"
)

const queueUsage = "usage: supportgate queue list [--all] [--limit N] [--json] [-config FILE] | retry ID | drop ID\n"

// QueueRow is one recipient in `queue list --json`.
type QueueRow struct {
	ID            int64  `json:"id"`
	Message       int64  `json:"message"`
	Conversation  int64  `json:"conversation"`
	Recipient     string `json:"recipient"`
	State         string `json:"state"`
	Attempts      int    `json:"attempts"`
	NextAttempt   string `json:"next_attempt"`
	Since         string `json:"since"`
	LastError     string `json:"last_error"`
	DelayNotified bool   `json:"delay_notified"`
}

// undelivered are the states `queue list` shows without --all.
var undelivered = []store.RecipientState{store.RecipientQueued, store.RecipientFailed, store.RecipientDropped}

// queue is `supportgate queue list|retry ID|drop ID` (DESIGN.md §11). It
// works on the store directly, beside a running daemon, which sees the
// change at its next queue poll (within seconds); retry and drop are the
// queue's own lifecycle changes (queue.Lifecycle).
func (c *CLI) queue(args []string) int {
	fl := c.flags("queue", queueUsage)
	configPath := fl.String("config", "", "configuration file")
	all := fl.Bool("all", false, "list delivered recipients too")
	limit := fl.Int("limit", 0, "list at most this many recipients (0: all)")
	asJSON := fl.Bool("json", false, "print JSON")
	pos, code, ok := parse(fl, args)
	if !ok {
		return code
	}
	if len(pos) == 0 {
		fmt.Fprint(c.Stderr, queueUsage)
		return 2
	}
	if *limit < 0 {
		fmt.Fprintf(c.Stderr, "supportgate queue: --limit %d is negative\n%s", *limit, queueUsage)
		return 2
	}
	var id int64
	switch pos[0] {
	case "list":
		if len(pos) != 1 {
			fmt.Fprint(c.Stderr, queueUsage)
			return 2
		}
	case "retry", "drop":
		if len(pos) != 2 {
			fmt.Fprint(c.Stderr, queueUsage)
			return 2
		}
		var err error
		if id, err = strconv.ParseInt(pos[1], 10, 64); err != nil || id <= 0 {
			fmt.Fprintf(c.Stderr, "supportgate queue %s: %q is not a queue ID (a number from `supportgate queue list`)\n", pos[0], pos[1])
			return 2
		}
	default:
		fmt.Fprintf(c.Stderr, "supportgate queue: unknown command %q\n%s", pos[0], queueUsage)
		return 2
	}
	ctx := context.Background()
	st, err := c.openStore(ctx, *configPath)
	if err != nil {
		return c.fail(err)
	}
	defer st.Close()
	lc := queue.Lifecycle{Store: st}
	switch pos[0] {
	case "retry":
		n, err := lc.RetryNow(ctx, id, time.Now())
		if err != nil {
			return c.fail(err)
		}
		if n == 0 {
			fmt.Fprintf(c.Stderr, "supportgate queue retry: queue entry %d has no recipient left to deliver (unknown ID, or all delivered)\n", id)
			return 1
		}
		fmt.Fprintf(c.Stdout, "queue entry %d: %d recipient(s) due now\n", id, n)
		return 0
	case "drop":
		dropped, err := lc.Drop(ctx, id, "dropped by an admin (supportgate queue drop)", time.Now())
		if err != nil {
			return c.fail(err)
		}
		if len(dropped) == 0 {
			fmt.Fprintf(c.Stderr, "supportgate queue drop: queue entry %d has no queued recipient (unknown ID, or all done)\n", id)
			return 1
		}
		for _, r := range dropped {
			fmt.Fprintf(c.Stdout, "queue entry %d: %s dropped\n", id, r.Recipient)
		}
		return 0
	}
	states := undelivered
	if *all {
		states = nil
	}
	return c.listQueue(ctx, st, states, *limit, *asJSON)
}

// listQueue prints every recipient in states (at most limit when it is not
// 0), reading the store a page at a time, by queue ID then address.
func (c *CLI) listQueue(ctx context.Context, st Store, states []store.RecipientState, limit int, asJSON bool) int {
	var out rowWriter
	if asJSON {
		out = &jsonArray{w: c.Stdout}
	} else {
		out = &table{w: c.Stdout, header: "ID\tCONVERSATION\tRECIPIENT\tSTATE\tATTEMPTS\tNEXT ATTEMPT\tLAST ERROR"}
	}
	q := store.QueuePageQuery{States: states}
	printed := 0
	for {
		q.Limit = c.pageSize()
		if limit > 0 {
			q.Limit = min(q.Limit, limit-printed)
		}
		page, err := st.QueuePage(ctx, q)
		if err != nil {
			return c.fail(err)
		}
		for _, r := range page {
			row := QueueRow{ID: r.QueueID, Message: r.Message, Conversation: r.Conversation, Recipient: r.Recipient,
				State: string(r.State), Attempts: r.Attempts, NextAttempt: r.NextAttempt.UTC().Format(time.RFC3339),
				Since: r.Since.UTC().Format(time.RFC3339), LastError: r.LastError, DelayNotified: r.DelayNotified}
			var err error
			if asJSON {
				err = out.row(row)
			} else {
				next := row.NextAttempt
				if r.State != store.RecipientQueued {
					next = "-"
				}
				err = out.row(fmt.Sprintf("%d\t%d\t%s\t%s\t%d\t%s\t%s", row.ID, row.Conversation, row.Recipient, row.State,
					row.Attempts, next, oneLine(row.LastError)))
			}
			if err != nil {
				return c.fail(err)
			}
		}
		printed += len(page)
		if len(page) < q.Limit || limit > 0 && printed >= limit {
			break
		}
		if err := out.flush(); err != nil {
			return c.fail(err)
		}
		q.After = page[len(page)-1].Key()
	}
	if err := out.end(); err != nil {
		return c.fail(err)
	}
	return 0
}
