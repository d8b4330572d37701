package store

// WorkspaceStore is the agents' IMAP workspace part of the store
// (DESIGN.md §6): shared folders, private mailboxes, flags and keywords.
type WorkspaceStore interface {
}
