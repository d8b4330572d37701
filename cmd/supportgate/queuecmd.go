package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/supportgate/supportgate/store"
)

const queueUsage = "usage: supportgate queue list [--all] [--json] [-config FILE] | retry ID | drop ID\n"

// queueRow is one recipient in `queue list --json`.
type queueRow struct {
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

// queueCommand is `supportgate queue list|retry ID|drop ID` (DESIGN.md §11).
// It works on the store directly, beside a running daemon, which sees the
// change at its next queue poll (within seconds).
func queueCommand(args []string, stdout, stderr io.Writer) int {
	var configPath string
	var asJSON, all bool
	var pos []string
	for i := 0; i < len(args); i++ {
		switch a := strings.TrimLeft(args[i], "-"); {
		case !strings.HasPrefix(args[i], "-"):
			pos = append(pos, args[i])
		case a == "json":
			asJSON = true
		case a == "all":
			all = true
		case a == "config" && i+1 < len(args):
			configPath = args[i+1]
			i++
		case strings.HasPrefix(a, "config="):
			configPath = strings.TrimPrefix(a, "config=")
		default:
			fmt.Fprintf(stderr, "supportgate queue: unknown flag %q\n%s", args[i], queueUsage)
			return 2
		}
	}
	if len(pos) == 0 {
		fmt.Fprint(stderr, queueUsage)
		return 2
	}
	var id int64
	switch pos[0] {
	case "list":
		if len(pos) != 1 {
			fmt.Fprint(stderr, queueUsage)
			return 2
		}
	case "retry", "drop":
		var err error
		if len(pos) != 2 {
			fmt.Fprint(stderr, queueUsage)
			return 2
		}
		if id, err = strconv.ParseInt(pos[1], 10, 64); err != nil || id <= 0 {
			fmt.Fprintf(stderr, "supportgate queue %s: %q is not a queue ID (a number from `supportgate queue list`)\n", pos[0], pos[1])
			return 2
		}
	default:
		fmt.Fprintf(stderr, "supportgate queue: unknown command %q\n%s", pos[0], queueUsage)
		return 2
	}
	ctx := context.Background()
	st, err := openStore(ctx, configPath, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "supportgate:", err)
		return 1
	}
	defer st.Close()
	switch pos[0] {
	case "retry":
		n, err := st.RetryNow(ctx, id, time.Now())
		if err != nil {
			fmt.Fprintln(stderr, "supportgate:", err)
			return 1
		}
		if n == 0 {
			fmt.Fprintf(stderr, "supportgate queue retry: queue entry %d has no recipient left to deliver (unknown ID, or all delivered)\n", id)
			return 1
		}
		fmt.Fprintf(stdout, "queue entry %d: %d recipient(s) due now\n", id, n)
		return 0
	case "drop":
		dropped, err := st.Drop(ctx, id, "dropped by an admin (supportgate queue drop)", time.Now())
		for _, r := range dropped {
			if _, eerr := st.AddEvent(ctx, store.Event{Conversation: r.Conversation, Type: "delivery-dropped",
				Text: "Delivery to " + r.Recipient + " was dropped by an admin; it will not be sent",
				Detail: fmt.Sprintf("Recipient: %s\nAttempts: %d\nLast remote answer: %s", r.Recipient, r.Attempts,
					cmp.Or(r.LastError, "none (never attempted)")), At: time.Now()}); eerr != nil {
				fmt.Fprintln(stderr, "supportgate: recording the team's event:", eerr)
			}
			fmt.Fprintf(stdout, "queue entry %d: %s dropped\n", id, r.Recipient)
		}
		if err != nil {
			fmt.Fprintln(stderr, "supportgate:", err)
			return 1
		}
		if len(dropped) == 0 {
			fmt.Fprintf(stderr, "supportgate queue drop: queue entry %d has no queued recipient (unknown ID, or all done)\n", id)
			return 1
		}
		return 0
	}
	rows, err := st.QueueRecipients(ctx, 0, false)
	if err != nil {
		fmt.Fprintln(stderr, "supportgate:", err)
		return 1
	}
	out := []queueRow{}
	for _, r := range rows {
		if r.State == store.RecipientDelivered && !all {
			continue
		}
		out = append(out, queueRow{ID: r.QueueID, Message: r.Message, Conversation: r.Conversation, Recipient: r.Recipient,
			State: string(r.State), Attempts: r.Attempts, NextAttempt: r.NextAttempt.UTC().Format(time.RFC3339),
			Since: r.Since.UTC().Format(time.RFC3339), LastError: r.LastError, DelayNotified: r.DelayNotified})
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			fmt.Fprintln(stderr, "supportgate:", err)
			return 1
		}
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCONVERSATION\tRECIPIENT\tSTATE\tATTEMPTS\tNEXT ATTEMPT\tLAST ERROR")
	for _, r := range out {
		next := r.NextAttempt
		if r.State != string(store.RecipientQueued) {
			next = "-"
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%d\t%s\t%s\n", r.ID, r.Conversation, r.Recipient, r.State, r.Attempts, next,
			strings.Join(strings.Fields(r.LastError), " "))
	}
	tw.Flush()
	return 0
}
