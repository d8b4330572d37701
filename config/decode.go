package config

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"

	toml "github.com/pelletier/go-toml/v2"
)

// The file as written. Pointers tell a key that is left out (nil: take the default) from one that is set.
type fileConfig struct {
	Server   fileServer        `toml:"server"`
	DNS      fileDNS           `toml:"dns"`
	TLS      fileTLS           `toml:"tls"`
	Outbound fileOutbound      `toml:"outbound"`
	DKIM     fileDKIM          `toml:"dkim"`
	Policy   filePolicy        `toml:"policy"`
	Limits   fileLimits        `toml:"limits"`
	Notices  fileNotifications `toml:"notifications"`
	Log      fileLog           `toml:"log"`
	Store    fileStore         `toml:"store"`
	Inboxes  []fileInbox       `toml:"inbox"`
	Agents   []fileAgent       `toml:"agent"`
}

type fileServer struct {
	Hostname          *string `toml:"hostname"`
	DataDir           *string `toml:"data_dir"`
	MXListen          *string `toml:"mx_listen"`
	SubmissionListen  *string `toml:"submission_listen"`
	SubmissionsListen *string `toml:"submissions_listen"`
	IMAPListen        *string `toml:"imap_listen"`
	IMAPSListen       *string `toml:"imaps_listen"`
	HTTPListen        *string `toml:"http_listen"`
	MaxMessageBytes   *int64  `toml:"max_message_bytes"`
}

type fileDNS struct {
	Resolver string `toml:"resolver"`
}

type fileTLS struct {
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
}

type fileOutbound struct {
	Mode        *string   `toml:"mode"`
	Relay       string    `toml:"relay"`
	Directory   string    `toml:"directory"`
	Retry       *[]string `toml:"retry"`
	GiveUpAfter *string   `toml:"give_up_after"`
	RelayCreds  string    `toml:"relay_credentials_file"`
	RelayCA     string    `toml:"relay_ca_file"`
	MaxConns    *int64    `toml:"max_connections"`
	MaxPerDom   *int64    `toml:"max_connections_per_domain"`
}

type fileDKIM struct {
	Selector       string `toml:"selector"`
	PrivateKeyFile string `toml:"private_key_file"`
}

type fileInbox struct {
	Address         string     `toml:"address"`
	Name            *string    `toml:"name"`
	MaxParticipants *int64     `toml:"max_participants"`
	BCC             []string   `toml:"bcc"`
	SubjectTag      *bool      `toml:"subject_tag"`
	RequireTag      *bool      `toml:"require_tag"`
	CollisionCheck  *bool      `toml:"collision_check"`
	Continuity      *string    `toml:"continuity_window"`
	Strangers       *string    `toml:"strangers"`
	ShowEvents      *bool      `toml:"show_events"`
	Blocked         []string   `toml:"blocked_senders"`
	MaxAttachment   *int64     `toml:"max_attachment_bytes"`
	RefusedTypes    []string   `toml:"refused_attachment_types"`
	AuthFailure     *string    `toml:"auth_failure"`
	AutoAck         *bool      `toml:"auto_acknowledge"`
	AutoAckText     *string    `toml:"auto_acknowledge_text"`
	Assign          *string    `toml:"assign"`
	Rules           []fileRule `toml:"rule"`
}

type fileAgent struct {
	Email        string            `toml:"email"`
	Name         *string           `toml:"name"`
	PasswordHash string            `toml:"password_hash"`
	Roles        map[string]string `toml:"roles"`
}

// parse decodes, validates and applies defaults.
func parse(name string, data []byte) (*Config, error) {
	// The parser keeps slices of data; a private copy protects the caller's bytes and ours.
	data = bytes.Clone(data)

	var fc fileConfig
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	decErr := dec.Decode(&fc)
	ps := walkPositions(data)

	var list []issue
	var strict *toml.StrictMissingError
	var de *toml.DecodeError
	switch {
	case decErr == nil:
	case errors.As(decErr, &strict):
		for i := range strict.Errors {
			list = append(list, unknownKeyIssue(&strict.Errors[i], ps))
		}
	case errors.As(decErr, &de):
		// A syntax or type error stops the decoder: nothing after it can be trusted.
		return nil, joinIssues(name, []issue{decodeIssue(de, ps)})
	default:
		return nil, joinIssues(name, []issue{{msg: "the file cannot be read as TOML: " + decErr.Error()}})
	}

	v := &validator{ps: ps}
	cfg := v.build(&fc)
	list = append(list, v.issues...)
	if err := joinIssues(name, list); err != nil {
		return nil, err
	}
	cfg.Source = name
	cfg.where = &keyLines{name: name, ps: ps}
	return cfg, nil
}

func unknownKeyIssue(e *toml.DecodeError, ps *positions) issue {
	line, col := e.Position()
	key, ok := ps.keyAt[[2]int{line, col}]
	if !ok {
		key = strings.Join(e.Key(), ".")
	}
	if strings.HasSuffix(strings.TrimPrefix(e.Error(), "toml: "), "table") {
		return issue{line, fmt.Sprintf("unknown table [%s]", key)}
	}
	return issue{line, fmt.Sprintf("unknown key %q", key)}
}

// The decoder's type mismatch messages.
var (
	typeError  = regexp.MustCompile(`^cannot decode TOML (.+?) into (?:.* of type )?(\S+)$`)
	storeError = regexp.MustCompile(`^cannot store (?:an? )?(.+?) in (?:an? )?(\S+)$`)
)

// shapes describes, for people, what some keys hold; other keys are described by their Go type.
var shapes = map[string]string{
	"outbound.retry":         `an array of durations like ["5m", "1h"]`,
	"outbound.give_up_after": `a duration like "5d"`,
	"inbox.bcc":              `an array of addresses like ["archive@example.test"]`,
	"agent.roles":            `an inline table like { "support@example.test" = "admin" }`,
	"inbox":                  "an array of tables, written [[inbox]]",
	"agent":                  "an array of tables, written [[agent]]",
	"server":                 "a table, written [server]",
	"dns":                    "a table, written [dns]",
	"tls":                    "a table, written [tls]",
	"outbound":               "a table, written [outbound]",
	"dkim":                   "a table, written [dkim]",
	"log":                    "a table, written [log]",
	"store":                  "a table, written [store]",
}

func decodeIssue(de *toml.DecodeError, ps *positions) issue {
	line, col := de.Position()
	msg := strings.TrimPrefix(de.Error(), "toml: ")
	if msg == "" {
		msg = "the file is not valid TOML"
	}
	key, ok := ps.valueAt[[2]int{line, col}]
	if !ok {
		key = strings.Join(de.Key(), ".")
	}
	m := typeError.FindStringSubmatch(msg)
	if m == nil {
		m = storeError.FindStringSubmatch(msg)
	}
	if m == nil || key == "" {
		if key != "" && strings.HasPrefix(msg, "cannot ") {
			msg = fmt.Sprintf("%s has the wrong type: %s", key, msg)
		}
		return issue{line, msg}
	}
	got, goType := article(strings.TrimSuffix(m[1], " value")), m[2]
	if strings.HasPrefix(key, "agent.roles.") || (key == "agent.roles" && goType == "string") {
		return issue{line, fmt.Sprintf(`a role in agent.roles must be "admin", "reply" or "view", not %s`, got)}
	}
	if goType == "string" && (key == "inbox.bcc" || key == "outbound.retry") {
		return issue{line, fmt.Sprintf("each entry of %s must be a string, not %s", key, got)}
	}
	want, ok := shapes[key]
	if !ok {
		want = describeGoType(goType)
	}
	return issue{line, fmt.Sprintf("%s must be %s, not %s", key, want, got)}
}

func describeGoType(t string) string {
	switch {
	case t == "string":
		return "a string"
	case t == "bool":
		return "true or false"
	case strings.HasPrefix(t, "int") || strings.HasPrefix(t, "uint"):
		return "an integer"
	case t == "slice":
		return "an array"
	case t == "[]string":
		return "an array of strings"
	case strings.HasPrefix(t, "[]"):
		return "an array of tables"
	default:
		return "a table"
	}
}

func article(noun string) string {
	if noun == "" {
		return "a value"
	}
	switch noun[0] {
	case 'a', 'e', 'i', 'o', 'u':
		return "an " + noun
	}
	return "a " + noun
}
