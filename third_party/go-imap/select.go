package imap

// SelectOptions contains options for the SELECT or EXAMINE command.
type SelectOptions struct {
	ReadOnly  bool
	CondStore bool // requires CONDSTORE

	// supportgate: RFC 7162 3.2.5, SELECT mailbox (QRESYNC (...)).
	QResync *SelectQResync // requires QRESYNC, enabled
}

// SelectQResync is the QRESYNC parameter of SELECT and EXAMINE (RFC 7162
// 3.2.5): what the client knew of the mailbox when it last had it.
type SelectQResync struct {
	UIDValidity uint32
	ModSeq      uint64
	// KnownUIDs are the UIDs the client knows; nil when it did not say
	// (all of them, RFC 7162 3.2.5).
	KnownUIDs UIDSet
	// SeqMatch, when not nil, pairs message sequence numbers with the UIDs
	// the client has for them (the optional seq-match-data).
	SeqMatch *SelectQResyncSeqMatch
}

// SelectQResyncSeqMatch is the seq-match-data of the QRESYNC parameter.
type SelectQResyncSeqMatch struct {
	SeqNums SeqSet
	UIDs    UIDSet
}

// SelectData is the data returned by a SELECT command.
//
// In the old RFC 2060, PermanentFlags, UIDNext and UIDValidity are optional.
type SelectData struct {
	// Flags defined for this mailbox
	Flags []Flag
	// Flags that the client can change permanently
	PermanentFlags []Flag
	// Number of messages in this mailbox (aka. "EXISTS")
	NumMessages uint32
	// Sequence number of the first unseen message. Obsolete, IMAP4rev1 only.
	// Server-only, not supported in imapclient.
	FirstUnseenSeqNum uint32
	// Number of recent messages in this mailbox. Obsolete, IMAP4rev1 only.
	// Server-only, not supported in imapclient.
	NumRecent   uint32
	UIDNext     UID
	UIDValidity uint32

	List *ListData // requires IMAP4rev2

	HighestModSeq uint64 // requires CONDSTORE
}
