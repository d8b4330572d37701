// Package queue delivers what the store has queued (DESIGN.md §9): once an
// agent got a 250, the reply reaches every recipient or the team is told why.
//
// Modes: "directory" (DirectoryWorker: files, the demo and dry-run mode),
// "mx" (Worker with MXTransport) and "relay" (Worker with RelayTransport).
//
// Choices:
//
//   - The queue is the store: one row per message and recipient (state
//     queued, delivered, failed or dropped; attempts; next attempt; last
//     error). Before each attempt the row's next attempt is moved to the
//     retry time and its attempts counted, durably (RFC 5321 4.5.4.1); only
//     then is the message sent. A kill -9 during the attempt leaves the
//     recipient queued and due at that retry time: nothing is lost, and a
//     message is sent twice only when the remote took it and the process died
//     before writing the 250 down, which is SMTP's own at-least-once.
//   - The same row claim keeps two workers (or two dispatch passes) from
//     sending to one recipient at once; an in-memory set guards attempts
//     that outlast their retry delay. A connection's batch is claimed in one
//     commit (store.QueueStore.BeginAttempts).
//   - Each recipient gets its own transaction, because its return path is
//     its own VERP address, bounces+<message>-<n>-<mac>@<domain>
//     (threading.Keys.RecipientBounceToken; n is the recipient's rank by
//     address in its message, store.QueuedRecipient.Number). Transactions
//     to one route (a domain in mx mode, the relay in relay mode) share a
//     connection, up to 50 per connection, with RSET after a refusal; at most
//     MaxPerRoute (3) connections per route and MaxConnections (20) in all.
//     A connection that the server closed between two transactions (a 421
//     or an I/O error at MAIL FROM, after earlier transactions: an idle
//     timeout or a per-connection message limit) is reopened and the
//     transaction sent again at once, since nothing of it reached the
//     server; any other broken connection defers the recipient.
//   - Outcomes: 250 delivered; a 5xx at any step is final for that recipient
//     (RFC 5321 4.2.1); a 4xx, a DNS or connection failure, or a TLS failure
//     to the relay defers it by the configured retry schedule (its last step
//     repeating) plus up to 10% jitter. A deferral after give_up_after from
//     the start of the period is final. A domain with a null MX (RFC 7505) or
//     that does not exist fails at once.
//   - The team hears of a recipient twice at most: a "delivery-delayed" event
//     at its first deferral, and a "delivery-failed" event when it fails;
//     both name the recipient and the remote answer. Events are written
//     before the state, so a crash may repeat one but never loses one.
//   - mx mode: MX hosts in preference order through the [dns] resolver (or
//     the system's), the domain's A/AAAA when it has no MX; the MX hosts'
//     addresses come from the same resolver. MX hosts are reached on port 25
//     (MXTransport.Port exists for tests of this package only). STARTTLS is
//     opportunistic (RFC 7435): used when offered, certificate not verified,
//     a failed handshake retried in plain text.
//   - relay mode: STARTTLS whenever the relay offers it, certificate
//     verified against the system's roots (a private CA goes into the
//     system's store, or SSL_CERT_FILE / SSL_CERT_DIR name it, which Go
//     reads; an unverifiable certificate defers, never falls back to plain
//     text). AUTH PLAIN (LOGIN when that is all
//     the relay offers) with the credentials in outbound.relay_credentials_file
//     ("username:password", read at each connection), only over TLS or to a
//     relay on loopback.
//   - DKIM is not the queue's: the submission signs the rewritten reply
//     (internal/dkimsign) before it is recorded and queued, so the stored
//     bytes are what every attempt sends.
//   - The queue owns the outbound lifecycle (Lifecycle): a bounce the MX
//     parsed (gateway/bounce.go) marks the recipient failed with a
//     "delivery-failed" event, a delay notice records a "delivery-delayed"
//     event, and an admin's retry and drop (the CLI) change the queue; each
//     is one store transaction with its events, so that no failure between
//     two writes leaves a state without its event or an event without its
//     state.
//   - Shutdown: when Run's context ends no attempt starts; those in flight
//     have ShutdownGrace (10s) to finish, then their connections are cut and
//     they are due again at once.
//   - Metrics: Worker.Stats (the Metrics interface) gives the recipients
//     queued now and the delivered, deferred and failed attempts since start.
//
// Imports: store (its Deliveries and QueueAdmin parts) and threading (the
// VERP tokens); never gateway, desk or an engine. It owns the outbound
// lifecycle: attempts and their outcomes (Worker), and what comes from
// outside the workers, a bounce the MX parsed, an admin's retry and drop
// (Lifecycle), each one store transaction with the team's events.
package queue
