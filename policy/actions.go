package policy

import (
	"fmt"
	"net/mail"
	"strconv"
	"strings"

	"github.com/supportgate/supportgate/config"
)

// ActionKind is a quick action an agent writes at the top of a message
// (DESIGN.md §5 item 4).
type ActionKind string

// The quick actions.
const (
	ActionAssign   ActionKind = "assign"   // #assign <agent|me|none>
	ActionTag      ActionKind = "tag"      // #tag <tag>...
	ActionUntag    ActionKind = "untag"    // #untag <tag>...
	ActionClose    ActionKind = "close"    // #close
	ActionOpen     ActionKind = "open"     // #open
	ActionSpam     ActionKind = "spam"     // #spam
	ActionUncc     ActionKind = "uncc"     // #uncc <address>
	ActionFollow   ActionKind = "follow"   // #follow [address]
	ActionUnfollow ActionKind = "unfollow" // #unfollow [address]
	ActionReadOnly ActionKind = "readonly" // #readonly on|off
	ActionMerge    ActionKind = "merge"    // #merge <id> (DESIGN.md §14)
	ActionSide     ActionKind = "side"     // #side: a side conversation (§14)
	ActionSend     ActionKind = "send"     // #send: past the collision hold (§5 item 10)
)

// actionArgs says how many arguments each action takes.
var actionArgs = map[ActionKind]struct {
	min, max int // max -1: any number
	usage    string
}{
	ActionAssign:   {1, 1, "#assign takes one agent address, me or none"},
	ActionTag:      {1, -1, "#tag takes one or more tags"},
	ActionUntag:    {1, -1, "#untag takes one or more tags"},
	ActionClose:    {0, 0, "#close takes nothing after it"},
	ActionOpen:     {0, 0, "#open takes nothing after it"},
	ActionSpam:     {0, 0, "#spam takes nothing after it"},
	ActionUncc:     {1, 1, "#uncc takes one address"},
	ActionFollow:   {0, 1, "#follow takes at most one address (none: you)"},
	ActionUnfollow: {0, 1, "#unfollow takes at most one address (none: you)"},
	ActionReadOnly: {1, 1, "#readonly takes on or off"},
	ActionMerge:    {1, 1, "#merge takes one conversation number"},
	ActionSide:     {0, 0, "#side takes nothing after it"},
	ActionSend:     {0, 0, "#send takes nothing after it"},
}

// Action is one parsed quick action.
type Action struct {
	Kind ActionKind
	Args []string
}

// ActionError is a quick action written wrong; its message is a sentence
// for the agent.
type ActionError struct{ Msg string }

func (e *ActionError) Error() string { return e.Msg }

// ParseActions reads the quick actions at the very top of a message's text:
// blank lines, then consecutive lines "#word args"; the first line that is
// not a known action ends them (an unknown #word is left as text). It
// returns the actions and the lines they take (with the blank lines before
// and one blank line after), so the caller can remove exactly those.
func ParseActions(text string) (actions []Action, lines []string, err error) {
	all := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	if all[len(all)-1] == "" {
		all = all[:len(all)-1] // what follows the last line break is no line
	}
	i := 0
	for i < len(all) && strings.TrimSpace(all[i]) == "" {
		i++
	}
	for ; i < len(all); i++ {
		fields := strings.Fields(all[i])
		if len(fields) == 0 || !strings.HasPrefix(fields[0], "#") {
			break
		}
		kind := ActionKind(strings.ToLower(fields[0][1:]))
		spec, known := actionArgs[kind]
		if !known {
			break
		}
		var args []string
		if len(fields) > 1 {
			args = fields[1:]
		}
		if len(args) < spec.min || spec.max >= 0 && len(args) > spec.max {
			return nil, nil, &ActionError{fmt.Sprintf("%q: %s", strings.TrimSpace(all[i]), spec.usage)}
		}
		if err := checkArgs(kind, args); err != nil {
			return nil, nil, err
		}
		actions = append(actions, Action{Kind: kind, Args: args})
	}
	if len(actions) == 0 {
		return nil, nil, nil
	}
	if i < len(all) && strings.TrimSpace(all[i]) == "" {
		i++ // the blank line that separates the actions from the text
	}
	return actions, all[:i], nil
}

func checkArgs(kind ActionKind, args []string) error {
	switch kind {
	case ActionTag, ActionUntag:
		for _, t := range args {
			if !validTag(t) {
				return &ActionError{fmt.Sprintf("%q is not a tag: use letters, digits and - _ . only", t)}
			}
		}
	case ActionReadOnly:
		if a := strings.ToLower(args[0]); a != "on" && a != "off" {
			return &ActionError{"#readonly takes on or off"}
		}
	case ActionMerge:
		if n, err := strconv.ParseInt(strings.TrimPrefix(args[0], "#"), 10, 64); err != nil || n <= 0 {
			return &ActionError{fmt.Sprintf("#merge %s: write the number of the conversation to merge this one into", args[0])}
		}
	case ActionUncc, ActionFollow, ActionUnfollow:
		for _, a := range args {
			if _, err := mail.ParseAddress(a); err != nil {
				return &ActionError{fmt.Sprintf("%q is not an email address", a)}
			}
		}
	}
	return nil
}

// validTag reports whether a tag can be an IMAP keyword too (config.ValidTag).
func validTag(t string) bool { return config.ValidTag(t) }

// MergeTarget returns the conversation number of a #merge action ("123" or
// "#123"), checked by ParseActions.
func MergeTarget(a Action) int64 {
	n, _ := strconv.ParseInt(strings.TrimPrefix(a.Args[0], "#"), 10, 64)
	return n
}
