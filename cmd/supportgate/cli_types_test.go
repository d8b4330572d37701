package main

import "github.com/supportgate/supportgate/internal/cli"

// The --json outputs of the commands, by the names the end-to-end tests
// decode them with (the commands live in internal/cli).
type (
	conversationJSON = cli.ConversationJSON
	messageJSON      = cli.MessageJSON
	eventJSON        = cli.EventJSON
	queueRow         = cli.QueueRow
)
