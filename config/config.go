// Package config is supportgate's typed configuration: one TOML file (DESIGN.md §10), decoded with
// defaults, validated, and the embedded demo configuration (config/example.toml, DESIGN.md §11).
//
// Errors name the file and the line of the offending key, "file:LINE: sentence", one per line and in
// line order when there are several; an error that belongs to no line is "file: sentence" and comes last.
// Unknown keys are errors.
//
// Choices made where the design is silent:
//
//   - server.hostname defaults to the machine's host name (os.Hostname) when that is a valid DNS name,
//     else "localhost". It must be a DNS name: letters, digits, '-' and '.'.
//   - A listen key that is left out takes its default; one set explicitly to "" turns that listener off.
//     Listen addresses are "host:port" with a numeric port (0 picks a free port, for tests); the host may
//     be empty (all interfaces), an IP address or a DNS name. submissions_listen and imaps_listen
//     (implicit TLS) need [tls].
//   - Durations are Go durations ("90s", "15m", "4h", "1h30m") plus the unit "d" for 24 hours ("5d",
//     "1.5d", "1d12h"). They must be greater than zero. outbound.retry must list at least one delay.
//   - data_dir and outbound.directory may be relative; they are relative to the daemon's working directory.
//     outbound.directory defaults to filepath.Join(data_dir, "outbox"). Files named by [tls] and [dkim] are
//     not opened here: internal/admin.Check opens them for check-config and serve and reports with the line
//     of their key (Config.Line, Config.KeyError).
//   - A configuration holding a demo agent's password hash (config/example.toml's, whose passwords are
//     published) listens on loopback only, as the demo does: CheckDemoPasswords (config/keys.go), called by
//     internal/admin.Check, not by Parse.
//   - An outbound.relay may be set whatever the mode; it is only required (and only used) in relay mode.
//   - Addresses are ASCII dot-atom addr-specs (no quoted local parts, no address literals), at most 254
//     characters, and are normalised to lowercase. An inbox address has no '+' (its plus forms are
//     accepted automatically), and its local part is not "bounces", which is the VERP return path.
//     An agent's email is neither an inbox address nor a plus form of one.
//   - Duplicate bcc addresses of an inbox are dropped silently; a bcc that is an inbox address is an error
//     (it would loop).
//   - An agent needs no role: an agent without roles can log in but sees no inbox. Role keys are inbox
//     addresses, case-insensitive; two keys for the same inbox are an error.
//   - password_hash must be a bcrypt hash ("$2a$", "$2b$" or "$2y$", cost 4 to 31). HashPassword refuses an
//     empty password, and bcrypt itself refuses passwords longer than 72 bytes.
//   - Names (server.hostname, inbox.name, agent.name) must be valid UTF-8 without control characters,
//     because they reach mail headers.
//   - A TOML [inbox] or [agent] table (single brackets) is an error: they are arrays of tables, [[inbox]].
//   - [[inbox.rule]] (config/rules.go): patterns are Go regular expressions matched without regard to
//     case; a rule needs at least one pattern and one action; its assign must be an agent with the reply
//     or admin role in the inbox; its followers may not be support addresses. inbox.assign =
//     "round-robin" needs at least one such agent.
//   - [notifications] (config/notifications.go): max_per_day counts per follower and conversation, 0
//     turns notifications off; first_after and interval are at most 7d.
//   - [log] (config/log.go): format and level are case-insensitive.
//
// Imports: the standard library and the TOML decoder only; every other
// package may import it.
package config

import (
	"cmp"
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Role is what an agent may do in one inbox.
type Role string

// The roles of DESIGN.md §2.
const (
	RoleAdmin Role = "admin" // everything
	RoleReply Role = "reply" // read and reply
	RoleView  Role = "view"  // read only; can mark read
)

// Config is a validated configuration with its defaults applied.
type Config struct {
	Source   string // where it came from: the file path, or "config/example.toml (embedded demo)"
	Demo     bool   // true when this is the embedded demo configuration
	Server   Server
	DNS      DNS
	TLS      TLS
	Outbound Outbound
	DKIM     DKIM
	Policy   Policy
	Limits   Limits // [limits]: config/limits.go
	Log      Log    // [log]: config/log.go
	Store    Store  // [store]: config/store.go
	// Notifications is [notifications]: config/notifications.go.
	Notifications Notifications
	Inboxes       []Inbox // TOML [[inbox]]
	Agents        []Agent // TOML [[agent]]

	// where are the lines of the file's keys, for errors about what a key
	// names (KeyError); nil for a Config made by hand.
	where *keyLines
}

// Server is the [server] table.
type Server struct {
	Hostname          string // hostname; default: os.Hostname(), else "localhost"
	DataDir           string // data_dir; default "/var/lib/supportgate"
	MXListen          string // mx_listen; default ":25"; "" = off
	SubmissionListen  string // submission_listen; default ":587"; "" = off
	SubmissionsListen string // submissions_listen; default "" (off)
	IMAPListen        string // imap_listen; default ":143"; "" = off
	IMAPSListen       string // imaps_listen; default "" (off)
	HTTPListen        string // http_listen; default "127.0.0.1:9325"; "" = off
	MaxMessageBytes   int64  // max_message_bytes; default 26214400; > 0
}

// DNS is the [dns] table.
type DNS struct {
	Resolver string // resolver; "" (the system's) or host:port
}

// TLS is the [tls] table: both files or neither.
type TLS struct {
	CertFile, KeyFile string
}

// Outbound is the [outbound] table.
type Outbound struct {
	Mode        string          // mode: "mx" | "relay" | "directory"; default "mx"
	Relay       string          // relay host:port; required when mode = "relay"
	Directory   string          // directory; default <data_dir>/outbox
	Retry       []time.Duration // retry; default 5m, 15m, 1h, 4h, 8h
	GiveUpAfter time.Duration   // give_up_after; default 5d
	// RelayCredentialsFile is relay_credentials_file: a file holding
	// "username:password" for AUTH at the relay, kept out of the config.
	RelayCredentialsFile string
	// RelayCAFile is relay_ca_file: PEM CA certificates the relay's
	// certificate is verified against instead of the system's roots.
	RelayCAFile string
	// MaxConnections is max_connections: SMTP connections open at once, all
	// destinations together; default 20.
	MaxConnections int
	// MaxConnectionsPerDomain is max_connections_per_domain: connections
	// open at once to one recipient domain's MX hosts, or to the relay;
	// default 10 (Postfix's default_destination_concurrency_limit is 20).
	MaxConnectionsPerDomain int
}

// DKIM is the [dkim] table: both keys or neither.
type DKIM struct {
	Selector, PrivateKeyFile string
}

// Inbox is one [[inbox]]: a support address.
type Inbox struct {
	Address         string   // address; lowercase addr-spec without '+'
	Name            string   // name; default: the address
	MaxParticipants int      // max_participants; default 10; >= 0
	BCC             []string // bcc; lowercase addresses
	SubjectTag      bool     // subject_tag; default true
	RequireTag      bool     // require_tag; default false
	// CollisionCheck is collision_check: a public reply to a message older
	// than the conversation's newest from the customer, a participant or
	// another agent's public reply is held (DESIGN.md §5 item 10). Default true.
	CollisionCheck bool
	// ContinuityWindow is continuity_window: a mail from an owner with an open
	// conversation updated this recently, with the same normalized subject,
	// continues it (DESIGN.md §4 rule 4). Default 0: off.
	ContinuityWindow time.Duration
	// Strangers is strangers: what a sender who is neither owner, participant
	// nor agent becomes when their mail threads into a conversation:
	// StrangersParticipant (default, when the cap has room) or StrangersHold.
	Strangers string
	// ShowEvents is show_events: team-only events (participant added,
	// assigned, closed...) appear as messages in the conversation. Default false.
	ShowEvents bool
	// BlockedSenders is blocked_senders, as Policy.BlockedSenders, for this inbox.
	BlockedSenders []string
	// MaxAttachmentBytes is max_attachment_bytes: the largest attachment an
	// agent may send (decoded size). Default 0: only max_message_bytes applies.
	MaxAttachmentBytes int64
	// RefusedAttachmentTypes is refused_attachment_types: MIME types agents
	// may not attach ("application/x-msdownload", "video/*").
	RefusedAttachmentTypes []string
	// AuthFailure is auth_failure: what the MX does with mail that fails SPF
	// or DMARC, one of the AuthFailure* values. Default AuthFailureFlag.
	AuthFailure string
	// AutoAcknowledge is auto_acknowledge: a customer's mail that opens a
	// new conversation gets an automatic acknowledgement (DESIGN.md §7,
	// RFC 3834), at most limits.max_auto_acknowledgements_per_sender_per_day
	// per address. Default false.
	AutoAcknowledge bool
	// AutoAcknowledgeText is auto_acknowledge_text: the acknowledgement's
	// text, with the placeholders {id}, {subject} and {inbox} (config/autoack.go).
	// Default DefaultAutoAcknowledgeText.
	AutoAcknowledgeText string
	// Assign is assign: AssignNone (default) or AssignRoundRobin, which hands
	// each new conversation to the inbox's agents with the reply or admin
	// role in turn, a turn that survives restarts (DESIGN.md §7). A rule's
	// assign comes first.
	Assign string
	// Rules are the [[inbox.rule]] tables, in file order (config/rules.go).
	Rules []Rule
}

// Values of Inbox.Strangers.
const (
	StrangersParticipant = "participant" // joins the conversation, if the cap has room
	StrangersHold        = "hold"        // stored and flagged for the team, never a participant
)

// Agent is one [[agent]]: a team member.
type Agent struct {
	Email        string          // email; lowercase
	Name         string          // name; default: local part of the email
	PasswordHash string          // password_hash; a bcrypt hash
	Roles        map[string]Role // roles: inbox address (lowercase) -> role
}

// Defaults of the keys that have one (hostname and outbound.directory are computed).
const (
	defaultDataDir         = "/var/lib/supportgate"
	defaultMXListen        = ":25"
	defaultSubmission      = ":587"
	defaultIMAPListen      = ":143"
	defaultHTTPListen      = "127.0.0.1:9325"
	defaultMaxMessageBytes = 26214400
	defaultMaxParticipants = 10
	defaultOutboundMode    = "mx"
	defaultGiveUpAfter     = 5 * 24 * time.Hour
	// The outbound connection limits; maxOutboundConnections bounds both.
	defaultOutboundConnections          = 20
	defaultOutboundConnectionsPerDomain = 10
	maxOutboundConnections              = 1000
)

func defaultRetry() []time.Duration {
	return []time.Duration{5 * time.Minute, 15 * time.Minute, time.Hour, 4 * time.Hour, 8 * time.Hour}
}

//go:embed example.toml
var exampleTOML []byte

const (
	exampleName   = "config/example.toml"
	exampleSource = "config/example.toml (embedded demo)"
)

// Load reads and validates the TOML file at path. Errors name the file and line: "path:LINE: sentence".
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: the configuration file does not exist", path)
		}
		return nil, fmt.Errorf("%s: cannot read the configuration file: %w", path, err)
	}
	return Parse(path, data)
}

// Parse validates TOML data; name is used in error messages ("name:LINE: ...") and as Source.
func Parse(name string, data []byte) (*Config, error) {
	return parse(name, data)
}

// Demo returns the embedded demo configuration (config/example.toml), with Demo = true and
// Source "config/example.toml (embedded demo)". It fails if the demo would listen on an address
// that is not loopback.
func Demo() (*Config, error) {
	c, err := Parse(exampleName, ExampleTOML())
	if err != nil {
		return nil, err
	}
	c.Source = exampleSource
	c.Demo = true
	if err := c.CheckLoopback(); err != nil {
		var list []issue
		for _, e := range unjoin(err) {
			list = append(list, issue{msg: "the demo configuration refuses to listen beyond this machine: " + e.Error()})
		}
		return nil, joinIssues(exampleName, list)
	}
	return c, nil
}

// ExampleTOML returns the embedded example file's bytes (a copy).
func ExampleTOML() []byte {
	return slices.Clone(exampleTOML)
}

// HashPassword returns a bcrypt hash (cost bcrypt.DefaultCost) of the password.
func HashPassword(password string) (string, error) {
	if password == "" {
		return "", errors.New("the password is empty")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return "", fmt.Errorf("cannot hash the password: %w", err)
	}
	return string(h), nil
}

// Inbox returns the inbox with that address (case-insensitive), if any.
func (c *Config) Inbox(address string) (Inbox, bool) {
	if c == nil {
		return Inbox{}, false
	}
	for _, in := range c.Inboxes {
		if strings.EqualFold(in.Address, address) {
			return in, true
		}
	}
	return Inbox{}, false
}

// Agent returns the agent with that email (case-insensitive), if any.
func (c *Config) Agent(email string) (Agent, bool) {
	if c == nil {
		return Agent{}, false
	}
	for _, a := range c.Agents {
		if strings.EqualFold(a.Email, email) {
			return a, true
		}
	}
	return Agent{}, false
}

// listens returns the listen keys and their values, in the order of the [server] table.
func (s *Server) listens() []struct{ key, value string } {
	return []struct{ key, value string }{
		{"server.mx_listen", s.MXListen},
		{"server.submission_listen", s.SubmissionListen},
		{"server.submissions_listen", s.SubmissionsListen},
		{"server.imap_listen", s.IMAPListen},
		{"server.imaps_listen", s.IMAPSListen},
		{"server.http_listen", s.HTTPListen},
	}
}

// CheckLoopback returns an error unless every non-empty listen address has a loopback host
// (127.0.0.0/8, ::1 or "localhost"); an empty host (":25", all interfaces) is not loopback.
// The error names each offending key and its value.
func (c *Config) CheckLoopback() error {
	var errs []error
	for _, l := range c.Server.listens() {
		if l.value == "" || isLoopback(l.value) {
			continue
		}
		errs = append(errs, fmt.Errorf("%s is %q, which is not a loopback address (127.0.0.1, ::1 or localhost)", l.key, l.value))
	}
	return errors.Join(errs...)
}

func isLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// unjoin splits an error made by errors.Join.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// issue is one problem found in a file; line 0 means no line is known.
type issue struct {
	line int
	msg  string
}

// joinIssues formats issues as "name:LINE: msg" (or "name: msg"), in line order, issues without a line
// last, joined by newlines.
func joinIssues(name string, list []issue) error {
	if len(list) == 0 {
		return nil
	}
	slices.SortStableFunc(list, func(a, b issue) int {
		if (a.line == 0) != (b.line == 0) {
			if a.line == 0 {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.line, b.line)
	})
	errs := make([]error, 0, len(list))
	for _, is := range list {
		msg := strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(is.msg)
		if is.line > 0 {
			errs = append(errs, fmt.Errorf("%s:%d: %s", name, is.line, msg))
		} else {
			errs = append(errs, fmt.Errorf("%s: %s", name, msg))
		}
	}
	return errors.Join(errs...)
}
