package store

// workspaceSchema is migration 4: the agents' IMAP workspace (issue 5).
const workspaceSchema = ``
