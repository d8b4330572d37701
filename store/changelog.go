package store

import "slices"

// ChangeLog collects what one write changed, for its engine to complete
// (each conversation's inbox and folder kinds, read in the write's
// transaction) and publish once it is committed (feed.go, DESIGN.md §13).
// What each kind of write changes is decided here, so that every engine
// publishes the same changes for the same write.
type ChangeLog struct {
	List  []Change
	Convs []ConvChange // completed by the engine
}

// ConvChange is a change of a conversation's shared entries.
type ConvChange struct {
	Conv   int64
	Flags  bool     // their flags changed (keywords, \Answered)
	Before []Folder // the kinds they were in before a move
}

// Add records changes as they are.
func (c *ChangeLog) Add(cs ...Change) { c.List = append(c.List, cs...) }

// Agent records a change only agent sees: of their state of shared
// entries (mailbox ""), or of a private mailbox.
func (c *ChangeLog) Agent(agent, mailbox string) {
	c.Add(Change{Agent: agent, Mailbox: mailbox})
}

// Conversation records that conv's shared entries changed: some were
// added, or they moved out of the folder kinds before (read before the
// write; nil when they did not move), and, with flags, what they show of
// the conversation's keywords or \Answered.
func (c *ChangeLog) Conversation(conv int64, flags bool, before []Folder) {
	c.Convs = append(c.Convs, ConvChange{Conv: conv, Flags: flags, Before: before})
}

// Event records an event's message in its conversation; a quiet event
// shows nowhere.
func (c *ChangeLog) Event(ev Event) {
	if !ev.Quiet {
		c.Conversation(ev.Conversation, false, nil)
	}
}

// Outbound records what recording out wrote: the message's entries (and
// \Answered on the earlier ones for a reply, keywords and folders of its
// quick actions), the author's Sent, and the queue.
func (c *ChangeLog) Outbound(out Outbound, before []Folder) {
	if out.Kind != KindNotification {
		flags := out.Kind == KindReply || out.Update != nil && len(out.Update.AddTags)+len(out.Update.RemoveTags) > 0
		c.Conversation(out.Conversation, flags, before)
	}
	if (out.Kind == KindReply || out.Kind == KindNote || out.Kind == KindSide) && out.Agent != "" {
		c.Agent(out.Agent, MailboxSent)
	}
	if IsQueued(out.Kind) && len(out.Recipients) > 0 {
		c.Add(Change{Queue: true})
	}
}

// AddFolders adds to kinds those of more it lacks.
func AddFolders(kinds, more []Folder) []Folder {
	for _, f := range more {
		if !slices.Contains(kinds, f) {
			kinds = append(kinds, f)
		}
	}
	return kinds
}
