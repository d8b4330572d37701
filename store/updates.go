package store

// One-change updates for UpdateConversation. The helpdesk's changes are
// built by package desk, with their events; these are for tools and tests
// that change one thing of a conversation through the same one write path
// (the store has no single-purpose setters: an engine implements
// UpdateConversation once).

// StatusUpdate sets conv's status: its messages leave INBOX, or enter it
// again with new UIDs.
func StatusUpdate(conv int64, status Status) ConversationUpdate {
	return ConversationUpdate{Conversation: conv, Status: &status}
}

// AssigneeUpdate assigns conv to agent (their email); "" removes the
// assignee. Its messages move between Mine and Unassigned.
func AssigneeUpdate(conv int64, agent string) ConversationUpdate {
	return ConversationUpdate{Conversation: conv, Assignee: &agent}
}

// KeywordsUpdate adds and removes conv's keywords: tags, and \Flagged
// (KeywordFlagged), compared case-insensitively.
func KeywordsUpdate(conv int64, add, remove []string) ConversationUpdate {
	return ConversationUpdate{Conversation: conv, AddTags: add, RemoveTags: remove}
}
