package admin

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// Version describes the binary (DESIGN.md §11): the release (set at build
// time with -ldflags "-X main.version=...", else the module version, else
// "dev"), the VCS revision it was built from with "+modified" when the
// tree had uncommitted changes, the commit time, and the Go version.
//
// The revision is the one go build stamps (vcs.revision), else revision,
// set with -ldflags "-X main.revision=..." (packaging/build-deb.sh does):
// go build stamps nothing in a linked git worktree, whose .git is a file
// (golang/go#58218), nor with -buildvcs=false. Without either it says
// "revision unknown".
func Version(release, revision string) string {
	bi, ok := debug.ReadBuildInfo()
	if release == "" {
		release = "dev"
		if ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			release = bi.Main.Version
		}
	}
	var rev, at, modified string
	goVersion := "unknown Go"
	if ok {
		goVersion = bi.GoVersion
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					modified = "+modified"
				}
			}
		}
	}
	if rev == "" {
		rev = revision
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s", release)
	if rev == "" {
		b.WriteString(" (revision unknown")
	} else {
		fmt.Fprintf(&b, " (revision %s%s", rev, modified)
		if at != "" {
			fmt.Fprintf(&b, ", %s", at)
		}
	}
	fmt.Fprintf(&b, ", %s)", goVersion)
	return b.String()
}
