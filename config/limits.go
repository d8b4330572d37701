package config

import "time"

// Limits is the [limits] table (DESIGN.md §8): what one client, sender or
// address may take of the server. Every limit is in force; none can be
// turned off, only raised.
type Limits struct {
	// MaxRecipients is max_recipients: RCPT TO per message, on MX and
	// submission. Default 100 (RFC 5321 4.5.3.1.8 asks for at least 100).
	MaxRecipients int
	// MaxConnectionsPerIP is max_connections_per_ip: open connections from
	// one IP address, counted per service (MX, submission, IMAP). Default 20.
	MaxConnectionsPerIP int
	// MaxMessagesPerSenderPerHour is max_messages_per_sender_per_hour: mail
	// the MX accepts from one envelope sender in any hour. Default 60.
	MaxMessagesPerSenderPerHour int
	// MaxAuthFailuresPerIP is max_auth_failures_per_ip: failed logins from one
	// IP address (submission and IMAP together) before logins from it are
	// refused for AuthLockout. Default 10.
	MaxAuthFailuresPerIP int
	// AuthLockout is auth_lockout: how long logins stay refused, and how long
	// a failure is remembered. Default 15m.
	AuthLockout time.Duration
	// AuthFailureDelay is auth_failure_delay: the n-th failed login from an
	// address is answered after n times this delay (at most 10 times).
	// Default 1s.
	AuthFailureDelay time.Duration
	// ReadTimeout is read_timeout: the longest wait for an SMTP command line,
	// and for the whole of a message after DATA (RFC 5321 4.5.3.2.7); on
	// IMAP, for a command line with its literals, and before login between
	// commands (an authenticated session may stay silent 35 minutes,
	// RFC 9051 5.4). Default 5m.
	ReadTimeout time.Duration
	// MaxAutoAcksPerSenderPerDay is
	// max_auto_acknowledgements_per_sender_per_day: automatic
	// acknowledgements (inbox.auto_acknowledge) one inbox sends to one
	// address in any 24 hours (RFC 3834 2). Default 1. Kept in the store, so
	// a restart does not reset it.
	MaxAutoAcksPerSenderPerDay int
	// MaxInflightBytes is max_inflight_bytes: message data held in memory
	// at once, SMTP DATA and IMAP APPEND of every client together
	// (DESIGN.md §8). A message that would pass it is refused for now (451
	// 4.3.1, IMAP NO [LIMIT]) and its sender retries. Default 256 MiB; at
	// least server.max_message_bytes, so that one message always fits.
	MaxInflightBytes int64
}

// Defaults of [limits].
const (
	defaultMaxRecipients         = 100
	defaultMaxConnectionsPerIP   = 20
	defaultMaxMessagesPerSender  = 60
	defaultMaxAuthFailuresPerIP  = 10
	defaultAuthLockout           = 15 * time.Minute
	defaultAuthFailureDelay      = time.Second
	defaultReadTimeout           = 5 * time.Minute
	defaultMaxAutoAcksPerDay     = 1
	defaultMaxInflightBytes      = 256 << 20
	maxInflightBytesLimit        = 1 << 40
	maxLimit                     = 1_000_000
	maxAuthFailureDelayOrTimeout = 24 * time.Hour
)

// DefaultLimits returns [limits] as it is when the table is left out.
func DefaultLimits() Limits {
	return Limits{
		MaxRecipients:               defaultMaxRecipients,
		MaxConnectionsPerIP:         defaultMaxConnectionsPerIP,
		MaxMessagesPerSenderPerHour: defaultMaxMessagesPerSender,
		MaxAuthFailuresPerIP:        defaultMaxAuthFailuresPerIP,
		AuthLockout:                 defaultAuthLockout,
		AuthFailureDelay:            defaultAuthFailureDelay,
		ReadTimeout:                 defaultReadTimeout,
		MaxAutoAcksPerSenderPerDay:  defaultMaxAutoAcksPerDay,
		MaxInflightBytes:            defaultMaxInflightBytes,
	}
}

type fileLimits struct {
	MaxRecipients               *int64  `toml:"max_recipients"`
	MaxConnectionsPerIP         *int64  `toml:"max_connections_per_ip"`
	MaxMessagesPerSenderPerHour *int64  `toml:"max_messages_per_sender_per_hour"`
	MaxAuthFailuresPerIP        *int64  `toml:"max_auth_failures_per_ip"`
	AuthLockout                 *string `toml:"auth_lockout"`
	AuthFailureDelay            *string `toml:"auth_failure_delay"`
	ReadTimeout                 *string `toml:"read_timeout"`
	MaxAutoAcksPerSenderPerDay  *int64  `toml:"max_auto_acknowledgements_per_sender_per_day"`
	MaxInflightBytes            *int64  `toml:"max_inflight_bytes"`
}

// count is the whole number at key (table.key), from 1 to most; def when
// it is not set, or after reporting a value out of range.
func (v *validator) count(key string, p *int64, def, most int) int {
	if p == nil {
		return def
	}
	if *p < 1 || *p > int64(most) {
		v.errorf(key, "%s is %d, but it must be from 1 to %d", key, *p, most)
		return def
	}
	return int(*p)
}

// duration validates a duration key of at most most (written mostText),
// returning def when it is left out or wrong.
func (v *validator) duration(path string, p *string, def, most time.Duration, mostText, example string) time.Duration {
	if p == nil {
		return def
	}
	d, why := parseDuration(*p)
	if why == "" && d > most {
		why = "it must be at most " + mostText
	}
	if why != "" {
		v.errorf(path, "%s is %q, which is not a duration like %s: %s", path, *p, example, why)
		return def
	}
	return d
}

// limits validates [limits] and applies its defaults.
func (v *validator) limits(l *Limits, fl *fileLimits) {
	count := func(key string, p *int64, def int) int { return v.count("limits."+key, p, def, maxLimit) }
	duration := func(key string, p *string, def time.Duration, example string) time.Duration {
		return v.duration("limits."+key, p, def, maxAuthFailureDelayOrTimeout, "24h", example)
	}
	l.MaxRecipients = count("max_recipients", fl.MaxRecipients, defaultMaxRecipients)
	l.MaxConnectionsPerIP = count("max_connections_per_ip", fl.MaxConnectionsPerIP, defaultMaxConnectionsPerIP)
	l.MaxMessagesPerSenderPerHour = count("max_messages_per_sender_per_hour", fl.MaxMessagesPerSenderPerHour, defaultMaxMessagesPerSender)
	l.MaxAuthFailuresPerIP = count("max_auth_failures_per_ip", fl.MaxAuthFailuresPerIP, defaultMaxAuthFailuresPerIP)
	l.MaxAutoAcksPerSenderPerDay = count("max_auto_acknowledgements_per_sender_per_day", fl.MaxAutoAcksPerSenderPerDay, defaultMaxAutoAcksPerDay)
	l.MaxInflightBytes = defaultMaxInflightBytes
	if p := fl.MaxInflightBytes; p != nil {
		if *p < 1 || *p > maxInflightBytesLimit {
			v.errorf("limits.max_inflight_bytes", "limits.max_inflight_bytes is %d, but it must be from 1 to %d", *p, int64(maxInflightBytesLimit))
		} else {
			l.MaxInflightBytes = *p
		}
	}
	l.AuthLockout = duration("auth_lockout", fl.AuthLockout, defaultAuthLockout, `"15m"`)
	l.AuthFailureDelay = duration("auth_failure_delay", fl.AuthFailureDelay, defaultAuthFailureDelay, `"1s"`)
	l.ReadTimeout = duration("read_timeout", fl.ReadTimeout, defaultReadTimeout, `"5m"`)
	if l.AuthFailureDelay*10 >= l.ReadTimeout && fl.AuthFailureDelay != nil {
		v.errorf("limits.auth_failure_delay", "limits.auth_failure_delay is %s; ten times it must stay under read_timeout (%s), or clients time out while they wait", l.AuthFailureDelay, l.ReadTimeout)
	}
}
