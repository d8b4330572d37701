package imapgw

import (
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/supportgate/supportgate/store"
)

// recordEvent records what an agent did to a conversation from their mail
// client (DESIGN.md §6, issue 4: assignment, status and tag changes), shown
// to the team when the conversation's inbox sets show_events.
func (m *session) recordEvent(conv int64, typ, text string) error {
	st := m.srv.opts.Store
	c, err := st.Conversation(m.ctx, conv)
	if err != nil {
		return m.internal("recording an event failed", err)
	}
	inbox, _ := m.srv.config().Inbox(c.Inbox)
	_, err = st.AddEvent(m.ctx, store.Event{Conversation: conv, Type: typ, At: time.Now(), Quiet: !inbox.ShowEvents,
		Text: m.agent.Email + " " + text})
	if err != nil {
		return m.internal("recording an event failed", err)
	}
	return nil
}

// actionText says what moving into dest did.
func actionText(dest folder) string {
	switch {
	case dest.kind == kindPrivate:
		return "moved it to Trash: closed"
	case dest.shared == store.FolderMine:
		return "took it (Mine): assigned to them"
	case dest.shared == store.FolderUnassigned:
		return "moved it to Unassigned: no assignee"
	case dest.shared == store.FolderClosed:
		return "closed it"
	case dest.shared == store.FolderSpam:
		return "marked it spam"
	}
	return "reopened it"
}

// flagText says what a STORE of keywords did.
func flagText(op imap.StoreFlagsOp, keywords []string) string {
	verb := map[imap.StoreFlagsOp]string{imap.StoreFlagsAdd: "added", imap.StoreFlagsDel: "removed", imap.StoreFlagsSet: "set"}[op]
	return verb + " " + strings.Join(keywords, " ")
}
