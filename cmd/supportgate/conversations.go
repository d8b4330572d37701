package main

import (
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

const conversationsUsage = "usage: supportgate conversations list [--status open|closed|spam] [--json] [-config FILE] | show ID [--json]\n"

// conversationsCommand is `supportgate conversations list|show` (DESIGN.md
// §11). It reads the store directly; a running daemon is no obstacle (WAL).
func conversationsCommand(args []string, stdout, stderr io.Writer) int {
	var configPath, status string
	var asJSON bool
	var pos []string
	for i := 0; i < len(args); i++ {
		a := strings.TrimLeft(args[i], "-")
		value := func() (string, bool) {
			if k, v, ok := strings.Cut(a, "="); ok {
				a = k
				return v, true
			}
			if i+1 < len(args) {
				i++
				return args[i], true
			}
			return "", false
		}
		switch {
		case !strings.HasPrefix(args[i], "-"):
			pos = append(pos, args[i])
		case a == "json":
			asJSON = true
		case strings.HasPrefix(a, "config"):
			v, ok := value()
			if !ok {
				fmt.Fprint(stderr, conversationsUsage)
				return 2
			}
			configPath = v
		case strings.HasPrefix(a, "status"):
			v, ok := value()
			if !ok || (v != "open" && v != "closed" && v != "spam") {
				fmt.Fprint(stderr, conversationsUsage)
				return 2
			}
			status = v
		default:
			fmt.Fprintf(stderr, "supportgate conversations: unknown flag %q\n%s", args[i], conversationsUsage)
			return 2
		}
	}
	var id int64
	switch {
	case len(pos) == 1 && pos[0] == "list":
	case len(pos) == 2 && pos[0] == "show":
		var err error
		if id, err = strconv.ParseInt(pos[1], 10, 64); err != nil || id <= 0 {
			fmt.Fprintf(stderr, "supportgate conversations show: %q is not a conversation number\n", pos[1])
			return 2
		}
	default:
		fmt.Fprint(stderr, conversationsUsage)
		return 2
	}
	ctx := context.Background()
	st, err := openStore(ctx, configPath, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "supportgate:", err)
		return 1
	}
	defer st.Close()
	if id == 0 {
		list, err := st.ListConversations(ctx, store.Status(status), 1000)
		if err != nil {
			fmt.Fprintln(stderr, "supportgate:", err)
			return 1
		}
		return printConversations(stdout, list, asJSON)
	}
	c, err := st.Conversation(ctx, id)
	if err != nil {
		fmt.Fprintf(stderr, "supportgate conversations show: no conversation %d\n", id)
		return 1
	}
	msgs, err := st.ConversationMessages(ctx, id)
	if err != nil {
		fmt.Fprintln(stderr, "supportgate:", err)
		return 1
	}
	return printConversation(stdout, c, msgs, asJSON)
}

// conversationJSON is a conversation in --json output.
type conversationJSON struct {
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
	Messages     []messageJSON `json:"messages,omitempty"`
}

type messageJSON struct {
	ID        int64     `json:"id"`
	Kind      string    `json:"kind"`
	Sender    string    `json:"sender"`
	MessageID string    `json:"message_id"`
	Received  time.Time `json:"received"`
	Size      int64     `json:"size"`
	HiddenBCC []string  `json:"hidden_bcc,omitempty"`
}

func toJSON(c store.Conversation) conversationJSON {
	nonNil := func(l []string) []string {
		if l == nil {
			return []string{}
		}
		return l
	}
	return conversationJSON{ID: c.ID, Inbox: c.Inbox, Owner: c.Owner, Subject: c.Subject, Status: string(c.Status),
		Assignee: c.Assignee, Tags: nonNil(c.Tags), Participants: nonNil(c.Participants), Followers: nonNil(c.Followers),
		ReadOnly: c.ReadOnly, Created: c.Created, Updated: c.Updated}
}

func printConversations(w io.Writer, list []store.Conversation, asJSON bool) int {
	if asJSON {
		out := make([]conversationJSON, 0, len(list))
		for _, c := range list {
			out = append(out, toJSON(c))
		}
		return writeJSON(w, out)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tINBOX\tOWNER\tASSIGNEE\tUPDATED\tSUBJECT")
	for _, c := range list {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Status, c.Inbox, c.Owner, c.Assignee,
			c.Updated.UTC().Format("2006-01-02 15:04"), c.Subject)
	}
	tw.Flush()
	return 0
}

func printConversation(w io.Writer, c store.Conversation, msgs []store.Message, asJSON bool) int {
	if asJSON {
		out := toJSON(c)
		for _, m := range msgs {
			out.Messages = append(out.Messages, messageJSON{ID: m.ID, Kind: string(m.Kind), Sender: m.Sender,
				MessageID: m.MessageIDHeader, Received: m.Received, Size: m.Size, HiddenBCC: m.HiddenBCC})
		}
		return writeJSON(w, out)
	}
	fmt.Fprintf(w, "Conversation %d [%s] in %s\nSubject: %s\nOwner: %s\n", c.ID, c.Status, c.Inbox, c.Subject, c.Owner)
	fmt.Fprintf(w, "Participants: %s\nFollowers: %s\nAssignee: %s\nTags: %s\nRead-only: %v\n\n",
		strings.Join(c.Participants, ", "), strings.Join(c.Followers, ", "), c.Assignee, strings.Join(c.Tags, " "), c.ReadOnly)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MESSAGE\tKIND\tFROM\tRECEIVED\tSIZE")
	for _, m := range msgs {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\n", m.ID, m.Kind, m.Sender, m.Received.UTC().Format("2006-01-02 15:04:05"), m.Size)
	}
	tw.Flush()
	return 0
}

func writeJSON(w io.Writer, v any) int {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return 1
	}
	return 0
}
