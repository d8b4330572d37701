package store

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
)

// The change feed (DESIGN.md §13, change fan-out).
//
// Every committed write publishes what it changed, so that an IMAP session
// wakes for the folder it shows and the queue for the queue, not everyone
// for every write. One process carries the changes through a Hub; several
// nodes on PostgreSQL carry them in NOTIFY payloads (EncodeChanges), which
// every node's LISTEN feeds into its own Hub.
//
// A change may say less than what happened, never something else: an empty
// Inbox or Folders is "any", and All is "everything may have changed". A
// subscriber woken for a change that turns out not to concern it reads
// again and finds nothing new; one not woken for a change that does would
// show stale mail, so a write that cannot say precisely what it changed
// says less.

// Change is what one write changed. Its parts are independent; a write
// that changed several things publishes several changes, or one with
// several parts. A change with no part concerns nobody and is dropped.
type Change struct {
	// Conversation, Inbox, Folders and Flags, with Agent "": a
	// conversation's entries in the shared folders, as every agent who
	// may see Inbox sees them. Folders are the shared folder kinds whose
	// entries of it were added or removed (a move names the kinds left and
	// entered), or (Flags) whose flags changed: the conversation's
	// keywords, \Answered. Inbox "" is any inbox; Folders empty is every
	// kind.
	Conversation int64    `json:"conv,omitempty"`
	Inbox        string   `json:"inbox,omitempty"`
	Folders      []Folder `json:"folders,omitempty"`
	Flags        bool     `json:"flags,omitempty"`
	// Agent: a change only that agent sees. With Mailbox "", their own
	// state of shared entries (\Seen, their keywords, marks), in Inbox and
	// Folders when those are set; with Mailbox, that private mailbox and
	// those below it (a rename moves them).
	Agent   string `json:"agent,omitempty"`
	Mailbox string `json:"mailbox,omitempty"`
	// Queue: recipients were queued, or made due again (RetryNow): a
	// delivery worker has work. Claims and outcomes of attempts do not
	// publish: the worker that made them knows.
	Queue bool `json:"queue,omitempty"`
	// All: everything may have changed (a restore, a lost LISTEN
	// connection): every subscriber wakes and reads again.
	All bool `json:"all,omitempty"`
}

// entries reports whether the change is about a conversation's shared
// entries.
func (c Change) entries() bool {
	return c.Agent == "" && (c.Conversation != 0 || c.Inbox != "" || len(c.Folders) > 0 || c.Flags)
}

// Filter selects the changes a subscriber wakes for; the zero Filter only
// those with All.
type Filter struct {
	// All: every change.
	All bool
	// Queue: changes of the outbound queue.
	Queue bool
	// Inboxes and Folders: a view of shared folders, the changes of
	// entries of these inboxes (compared case-insensitively) in these
	// folder kinds (nil: every kind). No inboxes: none.
	Inboxes []string
	Folders []Folder
	// Agent: that agent's own changes. With Mailbox "", those of shared
	// entries, within Inboxes and Folders as above when the change names
	// them; with Mailbox, those of that private mailbox (or of one above
	// it, renamed with it).
	Agent   string
	Mailbox string
}

// FolderFilter is the filter of an agent's view of a shared folder kind
// over the inboxes they may see.
func FolderFilter(agent string, folder Folder, inboxes []string) Filter {
	return Filter{Agent: agent, Inboxes: slices.Clone(inboxes), Folders: []Folder{folder}}
}

// MailboxFilter is the filter of an agent's private mailbox.
func MailboxFilter(agent, mailbox string) Filter {
	return Filter{Agent: agent, Mailbox: mailbox}
}

// Matches reports whether c concerns what f selects.
func (f Filter) Matches(c Change) bool {
	switch {
	case c.All || f.All:
		return true
	case c.Queue && f.Queue:
		return true
	case c.Agent == "":
		return c.entries() && len(f.Inboxes) > 0 && f.inbox(c.Inbox) && f.folder(c.Folders)
	case !strings.EqualFold(c.Agent, f.Agent):
		return false
	case c.Mailbox == "":
		return f.Mailbox == "" && f.inbox(c.Inbox) && f.folder(c.Folders)
	default:
		return f.Mailbox != "" && within(f.Mailbox, c.Mailbox)
	}
}

// inbox reports whether a change in inbox ("" any) is within f's inboxes
// (none: any).
func (f Filter) inbox(inbox string) bool {
	return inbox == "" || len(f.Inboxes) == 0 ||
		slices.ContainsFunc(f.Inboxes, func(in string) bool { return strings.EqualFold(in, inbox) })
}

// folder reports whether a change in folders (none: every kind) is within
// f's folder kinds (none: every kind).
func (f Filter) folder(folders []Folder) bool {
	return len(folders) == 0 || len(f.Folders) == 0 || slices.ContainsFunc(folders, func(k Folder) bool { return slices.Contains(f.Folders, k) })
}

// within reports whether mailbox is changed or below it: a rename of a
// mailbox renames those below it (the hierarchy delimiter is '/').
func within(mailbox, changed string) bool {
	return mailbox == changed || strings.HasPrefix(mailbox, changed+"/")
}

// Coalesce merges changes that differ only in their Folders and Flags
// (the folder kinds joined, Flags if any had it), and returns them with
// the queue's part as one change; one with All makes them one All. The
// result wakes every subscriber the changes woke, and no other.
func Coalesce(changes []Change) []Change {
	type key struct {
		conv                  int64
		inbox, agent, mailbox string
	}
	var out []Change
	at := map[key]int{}
	queue := false
	for _, c := range changes {
		if c.All {
			return []Change{{All: true}}
		}
		queue = queue || c.Queue
		c.Queue = false
		if !c.entries() && c.Agent == "" {
			continue // only the queue's part, if any
		}
		k := key{c.Conversation, c.Inbox, c.Agent, c.Mailbox}
		i, ok := at[k]
		if !ok {
			at[k] = len(out)
			c.Folders = slices.Clone(c.Folders)
			out = append(out, c)
			continue
		}
		m := &out[i]
		m.Flags = m.Flags || c.Flags
		switch {
		case len(m.Folders) == 0:
		case len(c.Folders) == 0:
			m.Folders = nil // every kind
		default:
			for _, f := range c.Folders {
				if !slices.Contains(m.Folders, f) {
					m.Folders = append(m.Folders, f)
				}
			}
		}
	}
	if queue {
		out = append(out, Change{Queue: true})
	}
	return out
}

// MaxPayload is the longest EncodeChanges gives: a PostgreSQL NOTIFY
// payload must be shorter than 8000 bytes.
const MaxPayload = 7999

// EncodeChanges encodes the changes of a transaction as a JSON array (the
// field names of Change), at most MaxPayload bytes: when they do not fit,
// the conversations are left out (each inbox's changes then say "some
// conversation"), and when that does not fit either, the payload is one
// All change. Every subscriber the changes would wake is woken by what it
// decodes to.
func EncodeChanges(changes []Change) []byte {
	cs := Coalesce(changes)
	if b, ok := encode(cs); ok {
		return b
	}
	coarse := make([]Change, len(cs))
	for i, c := range cs {
		c.Conversation = 0
		coarse[i] = c
	}
	if b, ok := encode(Coalesce(coarse)); ok {
		return b
	}
	b, _ := encode([]Change{{All: true}})
	return b
}

// encode is the JSON of cs, and whether it fits in a payload.
func encode(cs []Change) ([]byte, bool) {
	if cs == nil {
		cs = []Change{}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // addresses keep their '<', '>' and '&' short
	if err := enc.Encode(cs); err != nil {
		return nil, false // not for these types: no channel, func or cyclic value
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	return b, len(b) <= MaxPayload
}

// DecodeChanges decodes a payload of EncodeChanges. A receiver that
// cannot decode one must publish an All change: the payload said that
// something changed.
func DecodeChanges(payload []byte) ([]Change, error) {
	var cs []Change
	if err := json.Unmarshal(payload, &cs); err != nil {
		return nil, err
	}
	return cs, nil
}
