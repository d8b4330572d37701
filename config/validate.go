package config

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/pelletier/go-toml/v2/unstable"
)

// validator turns a decoded fileConfig into a Config, collecting every problem with the line of its key.
type validator struct {
	ps     *positions
	issues []issue
}

func (v *validator) errorf(path, format string, args ...any) {
	v.issues = append(v.issues, issue{v.ps.line(path), fmt.Sprintf(format, args...)})
}

func (v *validator) build(fc *fileConfig) *Config {
	c := &Config{}
	v.server(&c.Server, &fc.Server)
	v.tls(&c.TLS, &fc.TLS)
	if (c.Server.SubmissionsListen != "" || c.Server.IMAPSListen != "") && c.TLS.CertFile == "" {
		for _, l := range c.Server.listens() {
			if (l.key == "server.submissions_listen" || l.key == "server.imaps_listen") && l.value != "" {
				v.errorf(l.key, "%s is set, but implicit TLS needs [tls] cert_file and key_file", l.key)
			}
		}
	}
	c.DNS.Resolver = fc.DNS.Resolver
	if r := c.DNS.Resolver; r != "" {
		if why := checkHostPort(r, false); why != "" {
			v.errorf("dns.resolver", `dns.resolver is %q, which is not "host:port" like "127.0.0.1:53": %s`, r, why)
		}
	}
	v.outbound(&c.Outbound, &fc.Outbound, c.Server.DataDir)
	v.dkim(&c.DKIM, &fc.DKIM)
	v.limits(&c.Limits, &fc.Limits)
	if c.Limits.MaxInflightBytes < int64(c.Server.MaxMessageBytes) {
		v.errorf("limits.max_inflight_bytes", "limits.max_inflight_bytes is %d, less than server.max_message_bytes (%d): a message of the largest size could never be received",
			c.Limits.MaxInflightBytes, c.Server.MaxMessageBytes)
	}
	v.notifications(&c.Notifications, &fc.Notices)
	v.log(&c.Log, &fc.Log)
	v.store(&c.Store, &fc.Store)
	c.Policy.BlockedSenders = v.blockedSenders("policy.blocked_senders", "policy.blocked_senders", fc.Policy.BlockedSenders)
	c.Inboxes = v.inboxes(fc.Inboxes)
	c.Agents = v.agents(fc.Agents, c.Inboxes)
	v.rulesAssignees(c)
	return c
}

func (v *validator) server(s *Server, fs *fileServer) {
	if fs.Hostname == nil {
		s.Hostname = defaultHostname()
	} else {
		s.Hostname = *fs.Hostname
		if v.text("server.hostname", s.Hostname) && !validHostname(s.Hostname) {
			v.errorf("server.hostname", "server.hostname is %q, which is not a valid host name (letters, digits, '-' and '.')", s.Hostname)
		}
	}
	s.DataDir = defaultDataDir
	if fs.DataDir != nil {
		s.DataDir = *fs.DataDir
		if s.DataDir == "" {
			v.errorf("server.data_dir", "server.data_dir is empty; leave it out to use %s", defaultDataDir)
		}
		v.text("server.data_dir", s.DataDir)
	}
	listen := func(key string, p *string, def string) string {
		if p == nil {
			return def
		}
		if *p != "" {
			if why := checkListen(*p); why != "" {
				v.errorf(key, `%s is %q, which is not a listen address like ":25" or "127.0.0.1:25": %s`, key, *p, why)
			}
		}
		return *p
	}
	s.MXListen = listen("server.mx_listen", fs.MXListen, defaultMXListen)
	s.SubmissionListen = listen("server.submission_listen", fs.SubmissionListen, defaultSubmission)
	s.SubmissionsListen = listen("server.submissions_listen", fs.SubmissionsListen, "")
	s.IMAPListen = listen("server.imap_listen", fs.IMAPListen, defaultIMAPListen)
	s.IMAPSListen = listen("server.imaps_listen", fs.IMAPSListen, "")
	s.HTTPListen = listen("server.http_listen", fs.HTTPListen, defaultHTTPListen)
	s.MaxMessageBytes = defaultMaxMessageBytes
	if fs.MaxMessageBytes != nil {
		s.MaxMessageBytes = *fs.MaxMessageBytes
		if s.MaxMessageBytes <= 0 {
			v.errorf("server.max_message_bytes", "server.max_message_bytes is %d, but it must be greater than 0", s.MaxMessageBytes)
		}
	}
}

func defaultHostname() string {
	if h, err := os.Hostname(); err == nil && validHostname(h) {
		return h
	}
	return "localhost"
}

func (v *validator) tls(t *TLS, ft *fileTLS) {
	t.CertFile, t.KeyFile = ft.CertFile, ft.KeyFile
	v.pair("tls", "cert_file", t.CertFile, "key_file", t.KeyFile)
}

func (v *validator) dkim(d *DKIM, fd *fileDKIM) {
	d.Selector, d.PrivateKeyFile = fd.Selector, fd.PrivateKeyFile
	v.pair("dkim", "selector", d.Selector, "private_key_file", d.PrivateKeyFile)
	if d.Selector != "" && !validHostname(d.Selector) {
		v.errorf("dkim.selector", "dkim.selector is %q, which is not a valid DNS name (letters, digits, '-' and '.')", d.Selector)
	}
}

// pair reports a table where one of two keys that go together is set without the other.
func (v *validator) pair(table, k1, v1, k2, v2 string) {
	switch {
	case v1 != "" && v2 == "":
		v.errorf(table+"."+k1, "[%s] has %s but no %s; set both or neither", table, k1, k2)
	case v1 == "" && v2 != "":
		v.errorf(table+"."+k2, "[%s] has %s but no %s; set both or neither", table, k2, k1)
	}
	v.text(table+"."+k1, v1)
	v.text(table+"."+k2, v2)
}

func (v *validator) outbound(o *Outbound, fo *fileOutbound, dataDir string) {
	o.Mode = defaultOutboundMode
	if fo.Mode != nil {
		o.Mode = *fo.Mode
	}
	switch o.Mode {
	case "mx", "directory":
	case "relay":
		if fo.Relay == "" {
			v.errorf("outbound.mode", `outbound.mode is "relay", but outbound.relay is not set; add relay = "host:port"`)
		}
	default:
		v.errorf("outbound.mode", `outbound.mode is %q, but it must be "mx", "relay" or "directory"`, o.Mode)
	}
	o.Relay = fo.Relay
	if o.Relay != "" {
		if why := checkHostPort(o.Relay, false); why != "" {
			v.errorf("outbound.relay", `outbound.relay is %q, which is not "host:port" like "smtp.provider.example:587": %s`, o.Relay, why)
		}
	}
	o.RelayCredentialsFile = fo.RelayCreds
	v.text("outbound.relay_credentials_file", o.RelayCredentialsFile)
	o.RelayCAFile = fo.RelayCA
	v.text("outbound.relay_ca_file", o.RelayCAFile)
	o.Directory = fo.Directory
	if o.Directory == "" {
		o.Directory = filepath.Join(dataDir, "outbox")
	}
	v.text("outbound.directory", o.Directory)
	if fo.Retry == nil {
		o.Retry = defaultRetry()
	} else if len(*fo.Retry) == 0 {
		v.errorf("outbound.retry", `outbound.retry is empty; list at least one delay, like ["5m", "1h"]`)
	} else {
		for i, s := range *fo.Retry {
			d, why := parseDuration(s)
			if why != "" {
				v.errorf(fmt.Sprintf("outbound.retry.%d", i), "outbound.retry has %q, which is not a duration like \"30m\", \"4h\" or \"1d\": %s", s, why)
			}
			o.Retry = append(o.Retry, d)
		}
	}
	o.GiveUpAfter = defaultGiveUpAfter
	if fo.GiveUpAfter != nil {
		d, why := parseDuration(*fo.GiveUpAfter)
		if why != "" {
			v.errorf("outbound.give_up_after", "outbound.give_up_after is %q, which is not a duration like \"5d\" or \"36h\": %s", *fo.GiveUpAfter, why)
		}
		o.GiveUpAfter = d
	}
	o.MaxConnections = v.count("outbound.max_connections", fo.MaxConns, defaultOutboundConnections, maxOutboundConnections)
	o.MaxConnectionsPerDomain = v.count("outbound.max_connections_per_domain", fo.MaxPerDom, defaultOutboundConnectionsPerDomain, maxOutboundConnections)
	if o.MaxConnectionsPerDomain > o.MaxConnections {
		v.errorf("outbound.max_connections_per_domain", "outbound.max_connections_per_domain is %d, more than outbound.max_connections (%d); one domain cannot have more connections than all together",
			o.MaxConnectionsPerDomain, o.MaxConnections)
	}
}

func (v *validator) inboxes(fis []fileInbox) []Inbox {
	if k, ok := v.ps.kindOf("inbox"); ok && k != unstable.ArrayTable {
		v.errorf("inbox", "inboxes are an array of tables: write [[inbox]] with double brackets, once per inbox")
	}
	if len(fis) == 0 {
		v.errorf("inbox", `at least one [[inbox]] is required, with address = "support@your.domain"`)
	}
	out := make([]Inbox, 0, len(fis))
	first := map[string]int{} // address -> index of the inbox that defines it
	for i, fi := range fis {
		base := fmt.Sprintf("inbox.%d", i)
		in := Inbox{MaxParticipants: defaultMaxParticipants, SubjectTag: true, CollisionCheck: true, Strangers: StrangersParticipant}
		if fi.Address == "" {
			v.errorf(base, `this [[inbox]] has no address; add address = "support@your.domain"`)
		} else {
			addr, why := normalizeAddress(fi.Address)
			local, _, _ := strings.Cut(addr, "@")
			switch {
			case why != "":
				v.errorf(base+".address", "inbox address %q is not a valid email address: %s", fi.Address, why)
			case strings.Contains(local, "+"):
				v.errorf(base+".address", "inbox address %q contains '+'; write the plain address, its plus forms (support+anything@) are accepted anyway", fi.Address)
			case local == "bounces":
				v.errorf(base+".address", "inbox address %q is reserved: bounces+...@ is the return path of outgoing mail", fi.Address)
			}
			if why != "" {
				addr = strings.ToLower(fi.Address) // keeps later errors about this inbox readable
			}
			if j, dup := first[addr]; dup {
				v.errorf(base+".address", "inbox %q is defined twice%s", addr, v.firstOn(fmt.Sprintf("inbox.%d.address", j)))
			} else {
				first[addr] = i
			}
			in.Address = addr
		}
		in.Name = in.Address
		if fi.Name != nil {
			in.Name = *fi.Name
			if in.Name == "" {
				v.errorf(base+".name", "inbox.name is empty; leave it out to use the address")
			}
			v.text(base+".name", in.Name)
		}
		if fi.MaxParticipants != nil {
			n := *fi.MaxParticipants
			switch {
			case n < 0:
				v.errorf(base+".max_participants", "inbox.max_participants is %d, but it must be 0 or more", n)
			case n > math.MaxInt32:
				v.errorf(base+".max_participants", "inbox.max_participants is %d, which is too large", n)
			default:
				in.MaxParticipants = int(n)
			}
		}
		for k, b := range fi.BCC {
			addr, why := normalizeAddress(b)
			if why != "" {
				v.errorf(fmt.Sprintf("%s.bcc.%d", base, k), "inbox.bcc has %q, which is not a valid email address: %s", b, why)
				continue
			}
			if !slices.Contains(in.BCC, addr) {
				in.BCC = append(in.BCC, addr)
			}
		}
		if fi.SubjectTag != nil {
			in.SubjectTag = *fi.SubjectTag
		}
		if fi.RequireTag != nil {
			in.RequireTag = *fi.RequireTag
		}
		if fi.CollisionCheck != nil {
			in.CollisionCheck = *fi.CollisionCheck
		}
		if fi.Continuity != nil && *fi.Continuity != "0" && *fi.Continuity != "" {
			d, why := parseDuration(*fi.Continuity)
			if why != "" {
				v.errorf(base+".continuity_window", "inbox.continuity_window is %q, which is not a duration like \"3d\" or \"12h\" (\"0\" turns continuity off): %s", *fi.Continuity, why)
			}
			in.ContinuityWindow = d
		}
		if fi.Strangers != nil {
			switch *fi.Strangers {
			case StrangersParticipant, StrangersHold:
				in.Strangers = *fi.Strangers
			default:
				v.errorf(base+".strangers", "inbox.strangers is %q; it must be \"participant\" or \"hold\"", *fi.Strangers)
			}
		}
		if fi.ShowEvents != nil {
			in.ShowEvents = *fi.ShowEvents
		}
		in.AuthFailure = v.authFailure(base+".auth_failure", fi.AuthFailure)
		if fi.AutoAck != nil {
			in.AutoAcknowledge = *fi.AutoAck
		}
		in.AutoAcknowledgeText = v.autoAckText(base+".auto_acknowledge_text", fi.AutoAckText)
		in.BlockedSenders = v.blockedSenders(base+".blocked_senders", "inbox.blocked_senders", fi.Blocked)
		in.Assign = v.assignMode(base+".assign", fi.Assign)
		in.Rules = v.rules(base, fi.Rules)
		in.RefusedAttachmentTypes = v.attachmentTypes(base+".refused_attachment_types", "inbox.refused_attachment_types", fi.RefusedTypes)
		if fi.MaxAttachment != nil {
			if *fi.MaxAttachment < 0 {
				v.errorf(base+".max_attachment_bytes", "inbox.max_attachment_bytes is %d, but it must be 0 (no limit) or more", *fi.MaxAttachment)
			} else {
				in.MaxAttachmentBytes = *fi.MaxAttachment
			}
		}
		out = append(out, in)
	}
	for i, in := range out {
		for k, b := range fis[i].BCC {
			if addr, why := normalizeAddress(b); why != "" {
				continue
			} else if _, isInbox := first[addr]; isInbox {
				v.errorf(fmt.Sprintf("inbox.%d.bcc.%d", i, k), "inbox %q has %q in bcc, which is an inbox: every reply would come back in", in.Address, addr)
			}
		}
	}
	return out
}

func (v *validator) agents(fas []fileAgent, inboxes []Inbox) []Agent {
	if k, ok := v.ps.kindOf("agent"); ok && k != unstable.ArrayTable {
		v.errorf("agent", "agents are an array of tables: write [[agent]] with double brackets, once per agent")
	}
	isInbox := map[string]bool{}
	for _, in := range inboxes {
		isInbox[in.Address] = true
	}
	out := make([]Agent, 0, len(fas))
	first := map[string]int{}
	for i, fa := range fas {
		base := fmt.Sprintf("agent.%d", i)
		a := Agent{Roles: map[string]Role{}}
		who := "this agent"
		if fa.Email == "" {
			v.errorf(base, `this [[agent]] has no email; add email = "name@your.domain"`)
		} else {
			addr, why := normalizeAddress(fa.Email)
			local, domain, _ := strings.Cut(addr, "@")
			plain, _, _ := strings.Cut(local, "+")
			switch {
			case why != "":
				v.errorf(base+".email", "agent email %q is not a valid email address: %s", fa.Email, why)
			case isInbox[addr]:
				v.errorf(base+".email", "agent email %q is an inbox address; an agent needs an address of their own", addr)
			case isInbox[plain+"@"+domain]:
				v.errorf(base+".email", "agent email %q is a plus form of the inbox %q; an agent needs an address of their own", addr, plain+"@"+domain)
			}
			if why != "" {
				addr = strings.ToLower(fa.Email)
			}
			if j, dup := first[addr]; dup {
				v.errorf(base+".email", "agent %q is defined twice%s", addr, v.firstOn(fmt.Sprintf("agent.%d.email", j)))
			} else {
				first[addr] = i
			}
			a.Email = addr
			who = fmt.Sprintf("agent %q", addr)
		}
		local := fa.Email
		if at := strings.LastIndexByte(local, '@'); at >= 0 {
			local = local[:at]
		}
		a.Name = local
		if fa.Name != nil {
			a.Name = *fa.Name
			if a.Name == "" {
				v.errorf(base+".name", "agent.name is empty; leave it out to use the part of the email before @")
			}
			v.text(base+".name", a.Name)
		}
		a.PasswordHash = fa.PasswordHash
		switch {
		case a.PasswordHash == "":
			v.errorf(base, "%s has no password_hash; `supportgate passwd` prints one", who)
		case !bcryptHash.MatchString(a.PasswordHash):
			v.errorf(base+".password_hash", "%s has a password_hash that is not a bcrypt hash ($2a$, $2b$ or $2y$); `supportgate passwd` prints one", who)
		}
		keys := make([]string, 0, len(fa.Roles))
		for k := range fa.Roles {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			path := base + ".roles." + k
			inbox := strings.ToLower(k)
			role := Role(fa.Roles[k])
			switch {
			case !isInbox[inbox]:
				v.errorf(path, "%s has a role for %q, which is not an inbox", who, k)
			case role != RoleAdmin && role != RoleReply && role != RoleView:
				v.errorf(path, `%s has the role %q for %q; a role is "admin", "reply" or "view"`, who, string(role), inbox)
			}
			if _, dup := a.Roles[inbox]; dup {
				v.errorf(path, "%s has two roles for %q", who, inbox)
			}
			a.Roles[inbox] = role
		}
		out = append(out, a)
	}
	return out
}

// firstOn says where the first definition of a duplicate is, when that is known.
func (v *validator) firstOn(path string) string {
	if l := v.ps.line(path); l > 0 {
		return fmt.Sprintf("; the first is on line %d", l)
	}
	return ""
}

// text reports a value that would be unsafe in a mail header or a path: invalid UTF-8 or a control
// character. It returns true when the value is clean.
func (v *validator) text(path, s string) bool {
	if !utf8.ValidString(s) {
		v.errorf(path, "%s is not valid UTF-8", plainPath(path))
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			v.errorf(path, "%s contains a control character (%q), which is not allowed", plainPath(path), r)
			return false
		}
	}
	return true
}

// plainPath drops the entry numbers of a path: "inbox.2.name" -> "inbox.name".
func plainPath(path string) string {
	parts := strings.Split(path, ".")
	out := parts[:0]
	for _, p := range parts {
		if p != "" && strings.Trim(p, "0123456789") == "" {
			continue
		}
		out = append(out, p)
	}
	return strings.Join(out, ".")
}

var bcryptHash = regexp.MustCompile(`^\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$`)

// parseDuration parses a Go duration extended with the unit "d" (24 hours). It returns a reason when
// the value is not a duration greater than zero.
func parseDuration(s string) (time.Duration, string) {
	if s == "" {
		return 0, "it is empty"
	}
	var total time.Duration
	for rest := s; rest != ""; {
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '.') {
			i++
		}
		j := i
		for j < len(rest) && !(rest[j] >= '0' && rest[j] <= '9' || rest[j] == '.') {
			j++
		}
		num, unit := rest[:i], rest[i:j]
		rest = rest[j:]
		if num == "" {
			return 0, "it must be a positive number followed by a unit (s, m, h or d)"
		}
		var d time.Duration
		if unit == "d" {
			f, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, "it must be a positive number followed by a unit (s, m, h or d)"
			}
			if f*float64(24*time.Hour) >= math.MaxInt64 {
				return 0, "it is too long"
			}
			d = time.Duration(f * float64(24*time.Hour))
		} else {
			var err error
			if d, err = time.ParseDuration(num + unit); err != nil {
				if unit == "" {
					return 0, "a number needs a unit (s, m, h or d)"
				}
				return 0, fmt.Sprintf("%q is not a number with a unit (s, m, h or d)", num+unit)
			}
		}
		if total > math.MaxInt64-d {
			return 0, "it is too long"
		}
		total += d
	}
	if total <= 0 {
		return 0, "it must be longer than zero"
	}
	return total, ""
}
