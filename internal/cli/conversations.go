package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/supportgate/supportgate/store"
)

const conversationsUsage = "usage: supportgate conversations list [--status open|closed|spam] [--limit N] [--json] [-config FILE] | show ID [--json]\n"

// ConversationJSON is a conversation in --json output.
type ConversationJSON struct {
	ID           int64         `json:"id"`
	Inbox        string        `json:"inbox"`
	Owner        string        `json:"owner"`
	Subject      string        `json:"subject"`
	Status       string        `json:"status"`
	Assignee     string        `json:"assignee"`
	Tags         []string      `json:"tags"`
	Participants []string      `json:"participants"`
	Followers    []string      `json:"followers"`
	ReadOnly     bool          `json:"read_only"`
	Created      time.Time     `json:"created"`
	Updated      time.Time     `json:"updated"`
	Messages     []MessageJSON `json:"messages,omitempty"`
	// Show only: what each event was, the side conversations (DESIGN.md
	// §14), and the number asked for when it was merged into this one.
	Events     []EventJSON `json:"events,omitempty"`
	Sides      []SideJSON  `json:"sides,omitempty"`
	MergedFrom int64       `json:"merged_from,omitempty"`
}

// EventJSON is an event of a conversation in `conversations show --json`.
type EventJSON struct {
	Type   string    `json:"type"`
	Text   string    `json:"text"`
	Detail string    `json:"detail,omitempty"`
	At     time.Time `json:"at"`
}

// SideJSON is a side conversation in `conversations show --json`.
type SideJSON struct {
	Number     int      `json:"number"`
	Recipients []string `json:"recipients"`
	Hidden     []string `json:"hidden,omitempty"`
}

// MessageJSON is a message of a conversation in `conversations show --json`.
type MessageJSON struct {
	ID        int64     `json:"id"`
	Kind      string    `json:"kind"`
	Sender    string    `json:"sender"`
	MessageID string    `json:"message_id"`
	Received  time.Time `json:"received"`
	Size      int64     `json:"size"`
	HiddenBCC []string  `json:"hidden_bcc,omitempty"`
	Side      int       `json:"side,omitempty"`
}

// conversations is `supportgate conversations list|show` (DESIGN.md §11).
// It reads the store directly; a running daemon is no obstacle.
func (c *CLI) conversations(args []string) int {
	fl := c.flags("conversations", conversationsUsage)
	configPath := fl.String("config", "", "configuration file")
	status := fl.String("status", "", "list only the conversations of this status: open, closed or spam")
	limit := fl.Int("limit", 0, "list at most this many conversations (0: all)")
	asJSON := fl.Bool("json", false, "print JSON")
	pos, code, ok := parse(fl, args)
	if !ok {
		return code
	}
	switch *status {
	case "", "open", "closed", "spam":
	default:
		fmt.Fprintf(c.Stderr, "supportgate conversations: --status %q is none of open, closed, spam\n%s", *status, conversationsUsage)
		return 2
	}
	if *limit < 0 {
		fmt.Fprintf(c.Stderr, "supportgate conversations: --limit %d is negative\n%s", *limit, conversationsUsage)
		return 2
	}
	var id int64
	switch {
	case len(pos) == 1 && pos[0] == "list":
	case len(pos) == 2 && pos[0] == "show":
		var err error
		if id, err = strconv.ParseInt(pos[1], 10, 64); err != nil || id <= 0 {
			fmt.Fprintf(c.Stderr, "supportgate conversations show: %q is not a conversation number\n", pos[1])
			return 2
		}
	default:
		fmt.Fprint(c.Stderr, conversationsUsage)
		return 2
	}
	ctx := context.Background()
	st, err := c.openStore(ctx, *configPath)
	if err != nil {
		return c.fail(err)
	}
	defer st.Close()
	if id == 0 {
		return c.listConversations(ctx, st, store.Status(*status), *limit, *asJSON)
	}
	conv, err := st.Conversation(ctx, id)
	if err != nil {
		fmt.Fprintf(c.Stderr, "supportgate conversations show: no conversation %d\n", id)
		return 1
	}
	// A merged number answers to the conversation it was merged into.
	msgs, err := st.ConversationMessages(ctx, conv.ID)
	if err != nil {
		return c.fail(err)
	}
	events, err := st.Events(ctx, conv.ID)
	if err != nil {
		return c.fail(err)
	}
	sides, err := st.Sides(ctx, conv.ID)
	if err != nil {
		return c.fail(err)
	}
	if *asJSON {
		out := conversationJSON(conv)
		if conv.ID != id {
			out.MergedFrom = id
		}
		for _, m := range msgs {
			out.Messages = append(out.Messages, MessageJSON{ID: m.ID, Kind: string(m.Kind), Sender: m.Sender,
				MessageID: m.MessageIDHeader, Received: m.Received, Size: m.Size, HiddenBCC: m.HiddenBCC, Side: m.Side})
		}
		for _, e := range events {
			out.Events = append(out.Events, EventJSON{Type: e.Type, Text: e.Text, Detail: e.Detail, At: e.At})
		}
		for _, sd := range sides {
			out.Sides = append(out.Sides, SideJSON{Number: sd.Number, Recipients: sd.Recipients, Hidden: sd.Hidden})
		}
		if err := writeJSON(c.Stdout, out); err != nil {
			return c.fail(err)
		}
		return 0
	}
	if conv.ID != id {
		fmt.Fprintf(c.Stdout, "Conversation %d was merged into %d.\n\n", id, conv.ID)
	}
	printConversation(c.Stdout, conv, msgs, events, sides)
	return 0
}

// listConversations prints every conversation of status (at most limit
// when it is not 0), reading the store a page at a time, newest first
// (the store's stable order: store.ConversationStore.ListConversations).
func (c *CLI) listConversations(ctx context.Context, st Store, status store.Status, limit int, asJSON bool) int {
	var out rowWriter
	if asJSON {
		out = &jsonArray{w: c.Stdout}
	} else {
		out = &table{w: c.Stdout, header: "ID\tSTATUS\tINBOX\tOWNER\tASSIGNEE\tUPDATED\tSUBJECT"}
	}
	var before int64
	printed := 0
	for {
		n := c.pageSize()
		if limit > 0 {
			n = min(n, limit-printed)
		}
		page, next, err := st.ListConversations(ctx, status, before, n)
		if err != nil {
			return c.fail(err)
		}
		for _, conv := range page {
			var err error
			if asJSON {
				err = out.row(conversationJSON(conv))
			} else {
				err = out.row(fmt.Sprintf("%d\t%s\t%s\t%s\t%s\t%s\t%s", conv.ID, conv.Status, conv.Inbox, conv.Owner, conv.Assignee,
					conv.Updated.UTC().Format("2006-01-02 15:04"), conv.Subject))
			}
			if err != nil {
				return c.fail(err)
			}
		}
		printed += len(page)
		if next == 0 || limit > 0 && printed >= limit {
			break
		}
		if err := out.flush(); err != nil {
			return c.fail(err)
		}
		before = next
	}
	if err := out.end(); err != nil {
		return c.fail(err)
	}
	return 0
}

func conversationJSON(c store.Conversation) ConversationJSON {
	nonNil := func(l []string) []string {
		if l == nil {
			return []string{}
		}
		return l
	}
	return ConversationJSON{ID: c.ID, Inbox: c.Inbox, Owner: c.Owner, Subject: c.Subject, Status: string(c.Status),
		Assignee: c.Assignee, Tags: nonNil(c.Tags), Participants: nonNil(c.Participants), Followers: nonNil(c.Followers),
		ReadOnly: c.ReadOnly, Created: c.Created, Updated: c.Updated}
}

func printConversation(w io.Writer, c store.Conversation, msgs []store.Message, events []store.Event, sides []store.Side) {
	fmt.Fprintf(w, "Conversation %d [%s] in %s\nSubject: %s\nOwner: %s\n", c.ID, c.Status, c.Inbox, c.Subject, c.Owner)
	fmt.Fprintf(w, "Participants: %s\nFollowers: %s\nAssignee: %s\nTags: %s\nRead-only: %v\n\n",
		strings.Join(c.Participants, ", "), strings.Join(c.Followers, ", "), c.Assignee, strings.Join(c.Tags, " "), c.ReadOnly)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MESSAGE\tKIND\tFROM\tRECEIVED\tSIZE")
	for _, m := range msgs {
		kind := string(m.Kind)
		if m.Kind == store.KindSide {
			kind = fmt.Sprintf("side %d", m.Side)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\n", m.ID, kind, m.Sender, m.Received.UTC().Format("2006-01-02 15:04:05"), m.Size)
	}
	tw.Flush()
	if len(sides) > 0 {
		fmt.Fprintln(w, "\nSide conversations (DESIGN.md §14):")
		for _, sd := range sides {
			fmt.Fprintf(w, "  side %d: %s", sd.Number, strings.Join(sd.Recipients, ", "))
			if len(sd.Hidden) > 0 {
				fmt.Fprintf(w, " (Bcc: %s)", strings.Join(sd.Hidden, ", "))
			}
			fmt.Fprintln(w)
		}
	}
	if len(events) > 0 {
		fmt.Fprintln(w, "\nEvents:")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "AT\tEVENT\tWHAT")
		for _, e := range events {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", e.At.UTC().Format("2006-01-02 15:04:05"), e.Type, oneLine(e.Text))
		}
		tw.Flush()
	}
}
