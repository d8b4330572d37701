package store

// queueSchema is migration 3: the durable outbound queue (issue 6).
const queueSchema = ``
