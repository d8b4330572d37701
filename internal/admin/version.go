package admin

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// Version describes the binary (DESIGN.md §11): the release (set at build
// time with -ldflags "-X main.version=...", else the module version, else
// "dev"), the VCS revision it was built from with "+modified" when the
// tree had uncommitted changes, the commit time, and the Go version. A
// binary built outside a repository, or with -buildvcs=false, says
// "revision unknown".
func Version(release string) string {
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
