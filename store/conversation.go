package store

// ConversationStore is the conversation-management part of the store
// (DESIGN.md §3 item 4, §5, §7): followers, events, policies.
type ConversationStore interface {
}
