package config

import (
	"fmt"
	"strings"
	"sync"
)

// keyLines remembers where a file's keys are, so that a problem found
// after parsing (a certificate file that does not open, a demo password on
// a public address) is reported as "file:LINE: sentence" like any other.
type keyLines struct {
	name string
	ps   *positions
}

// Line returns the line of key in the file ("tls.cert_file",
// "agent.2.password_hash": arrays of tables are numbered from 0), else the
// line of its closest enclosing table, else 0.
func (c *Config) Line(key string) int {
	if c == nil || c.where == nil {
		return 0
	}
	return c.where.ps.line(key)
}

// KeyError returns msg as an error about key: "file:LINE: msg", or
// "file: msg" when the line is unknown.
func (c *Config) KeyError(key, msg string) error {
	name := c.Source
	if c.where != nil {
		name = c.where.name
	}
	return joinIssues(name, []issue{{line: c.Line(key), msg: msg}})
}

// demoAgent is an agent of the embedded demo, whose password is public.
type demoAgent struct{ email, password string }

// demoHashes maps the password hashes of config/example.toml's agents to
// them: anyone who read the README knows these passwords.
var demoHashes = sync.OnceValue(func() map[string]demoAgent {
	c, err := Parse(exampleName, exampleTOML)
	if err != nil {
		panic("config: the embedded example does not parse: " + err.Error())
	}
	m := map[string]demoAgent{}
	for _, a := range c.Agents {
		local, _, _ := strings.Cut(a.Email, "@")
		m[a.PasswordHash] = demoAgent{email: a.Email, password: "demo-" + local}
	}
	return m
})

// IsDemoPasswordHash reports whether hash is the password hash of one of
// the embedded demo's agents (config/example.toml), whose passwords are
// published in the README.
func IsDemoPasswordHash(hash string) bool {
	_, ok := demoHashes()[hash]
	return ok
}

// CheckDemoPasswords refuses a configuration that holds a demo agent's
// password hash (a copy of config/example.toml) and listens on an address
// that is not loopback, as the embedded demo itself does (DESIGN.md §11):
// one "file:LINE:" error per such hash, at its password_hash.
func (c *Config) CheckDemoPasswords() error {
	var demo []int
	for i, a := range c.Agents {
		if IsDemoPasswordHash(a.PasswordHash) {
			demo = append(demo, i)
		}
	}
	if len(demo) == 0 {
		return nil
	}
	var public []string
	for _, l := range c.Server.listens() {
		if l.value != "" && !isLoopback(l.value) {
			public = append(public, fmt.Sprintf("%s is %q", l.key, l.value))
		}
	}
	if len(public) == 0 {
		return nil
	}
	name := c.Source
	if c.where != nil {
		name = c.where.name
	}
	var list []issue
	for _, i := range demo {
		a := c.Agents[i]
		d := demoHashes()[a.PasswordHash]
		list = append(list, issue{line: c.Line(fmt.Sprintf("agent.%d.password_hash", i)), msg: fmt.Sprintf(
			"agent %q has the password hash of the demo agent %s, whose password %q is published; a configuration "+
				"holding a demo password listens on loopback only, but %s. Set a password of its own with `supportgate passwd`",
			a.Email, d.email, d.password, strings.Join(public, " and "))})
	}
	return joinIssues(name, list)
}
