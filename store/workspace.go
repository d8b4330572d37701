package store

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"
)

// Shared folder kinds beyond INBOX (DESIGN.md §6, §13). Each has its own
// global entry sequence; what decides visibility is recorded with the entry
// (the inbox, and for Mine the assignee).
const (
	FolderMine       Folder = "Mine"       // open conversations, per assignee
	FolderUnassigned Folder = "Unassigned" // open conversations with no assignee
	FolderClosed     Folder = "Closed"     // closed conversations
	FolderSpam       Folder = "Spam"       // conversations marked spam
)

// SharedFolders returns the shared folder kinds, in the order agents see them.
func SharedFolders() []Folder {
	return []Folder{FolderInbox, FolderMine, FolderUnassigned, FolderClosed, FolderSpam}
}

// Names of the private mailboxes every agent has (DESIGN.md §6).
const (
	MailboxDrafts = "Drafts"
	MailboxSent   = "Sent"
	MailboxTrash  = "Trash"
)

// Conversation keywords with a meaning of their own. Every other keyword
// (one without a leading '\' or '$') is a tag.
const (
	KeywordFlagged  = `\Flagged`
	KeywordAnswered = `\Answered`
)

// SplitKeywords is what a conversation's keywords say in a Conversation:
// whether it is \Flagged, and its tags, sorted.
func SplitKeywords(keywords []string) (flagged bool, tags []string) {
	for _, k := range keywords {
		switch {
		case strings.EqualFold(k, KeywordFlagged):
			flagged = true
		case !strings.HasPrefix(k, `\`) && !strings.HasPrefix(k, "$"):
			tags = append(tags, k)
		}
	}
	slices.Sort(tags)
	return flagged, tags
}

// ErrExists is returned when a private mailbox of that name already exists.
var ErrExists = errors.New("store: already exists")

// ErrHasChildren is returned when a private mailbox to delete has children.
var ErrHasChildren = errors.New("store: mailbox has children")

// Mark is a per-agent mark on a shared folder entry.
type Mark string

// Entry marks.
const (
	MarkDeleted Mark = "deleted" // \Deleted, until the agent expunges
	MarkHidden  Mark = "hidden"  // expunged by the agent from Closed or Spam: no longer in their view
)

// PrivateMailbox is one of an agent's own mailboxes.
type PrivateMailbox struct {
	Name        string
	UIDValidity uint32
	UIDNext     uint32
	// HighestModSeq (RFC 7162 3.1.2.1) is set by PrivateEntries only: at
	// least the ModSeq of every entry it returns.
	HighestModSeq int64
}

// PrivateMessage is a message to file in a private mailbox: either a copy
// of a conversation's message (Message set; its bytes are the served copy
// of that message, which never changes) or bytes of its own (Raw).
type PrivateMessage struct {
	Message  int64
	Raw      []byte
	Flags    []string // every flag but \Recent, \Seen included
	Received time.Time
}

// WorkspaceStore is the agents' IMAP workspace part of the store
// (DESIGN.md §6): an agent's own state of shared folders (\Seen, keywords,
// marks), private mailboxes and subscriptions. A change of a conversation
// itself (status, assignee, tags, \Flagged) is UpdateConversation, made by
// package desk. Each write commits durably and publishes the change (Feed)
// to the IMAP sessions that show it.
type WorkspaceStore interface {
	// SetAgentKeywords adds and removes an agent's own keywords on
	// conversations' messages (DESIGN.md §6: a client's bookkeeping, and
	// the \Answered it stores), like \Seen: no other agent sees them.
	SetAgentKeywords(ctx context.Context, agent string, messages []int64, add, remove []string) error

	// SetMarks adds or removes an agent's mark on entries (by UID) of a
	// shared folder kind.
	SetMarks(ctx context.Context, agent string, folder Folder, uids []uint32, mark Mark, on bool) error

	// PrivateMailboxes lists an agent's mailboxes by name, creating Drafts,
	// Sent and Trash on first use.
	PrivateMailboxes(ctx context.Context, agent string) ([]PrivateMailbox, error)
	// CreateMailbox creates a private mailbox and any missing parents
	// (RFC 9051 6.3.4); ErrExists if it exists.
	CreateMailbox(ctx context.Context, agent, name string) error
	// DeleteMailbox deletes a private mailbox with its messages;
	// ErrNotFound, or ErrHasChildren when other mailboxes are below it.
	DeleteMailbox(ctx context.Context, agent, name string) error
	// RenameMailbox renames a private mailbox and those below it.
	RenameMailbox(ctx context.Context, agent, from, to string) error
	// PrivateEntries returns a private mailbox's messages in UID order.
	PrivateEntries(ctx context.Context, agent, name string) (PrivateMailbox, []MailboxEntry, error)
	// PrivateRaw returns the bytes of a private message that has its own.
	PrivateRaw(ctx context.Context, agent, name string, uid uint32) ([]byte, error)
	// AddPrivate files messages in a private mailbox and returns their UIDs
	// (RFC 4315 APPENDUID/COPYUID).
	AddPrivate(ctx context.Context, agent, name string, msgs []PrivateMessage) (mailbox PrivateMailbox, uids []uint32, err error)
	// SetPrivateFlags replaces the flags of private messages (by UID).
	SetPrivateFlags(ctx context.Context, agent, name string, flags map[uint32][]string) error
	// ChangePrivateFlags adds (add) or removes flags (case-insensitive) of
	// private messages, as they are when it commits: concurrent changes of
	// other flags are kept. Messages no longer there are skipped.
	ChangePrivateFlags(ctx context.Context, agent, name string, uids []uint32, flags []string, add bool) error
	// RemovePrivate removes private messages (EXPUNGE, or the source of a MOVE).
	RemovePrivate(ctx context.Context, agent, name string, uids []uint32) error

	// Subscriptions returns what the agent chose to subscribe (true) or
	// unsubscribe (false), by mailbox name; a name absent from the map has
	// the IMAP gateway's default. The names need not exist (RFC 3501
	// 6.3.6); RenameMailbox moves them with the mailboxes.
	Subscriptions(ctx context.Context, agent string) (map[string]bool, error)
	// SetSubscribed records an agent's SUBSCRIBE (on) or UNSUBSCRIBE.
	SetSubscribed(ctx context.Context, agent, name string, on bool) error

	// MessagesMeta returns the stored FETCH metadata of conversations'
	// messages (opaque bytes, see SQLite.SetMetaFunc); a message without
	// any is absent from the map.
	MessagesMeta(ctx context.Context, ids []int64) (map[int64][]byte, error)
	// SetMessagesMeta records FETCH metadata computed later than the
	// message was stored (messages stored before it existed).
	SetMessagesMeta(ctx context.Context, meta map[int64][]byte) error
	// MessagesRaw returns the stored bytes of conversations' messages, in
	// one read per few hundred; a missing message is absent from the map.
	MessagesRaw(ctx context.Context, ids []int64) (map[int64][]byte, error)
}
