package main

import (
	"runtime"
	"runtime/debug"
	"strings"
)

// version describes the build of this binary: the module version, the
// commit it was built from when the build recorded one, and Go's version.
func version() string {
	info, _ := debug.ReadBuildInfo()
	return formatVersion(info)
}

// formatVersion formats build information as one line, e.g.
// "messager v1.2.0 commit 0a1b2c3d4e5f (2025-06-01T12:00:00Z, modified) go1.26.8".
// A build outside a module release is "(devel)"; the commit is there only
// when the build recorded it (a build in a repository with version
// control stamping on).
func formatVersion(info *debug.BuildInfo) string {
	v, goVersion := "(devel)", runtime.Version()
	var revision, when string
	modified := false
	if info != nil {
		if info.Main.Version != "" {
			v = info.Main.Version
		}
		if info.GoVersion != "" {
			goVersion = info.GoVersion
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.time":
				when = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	b := strings.Builder{}
	b.WriteString("messager " + v)
	if revision != "" {
		b.WriteString(" commit " + revision[:min(len(revision), 12)])
		var notes []string
		if when != "" {
			notes = append(notes, when)
		}
		if modified {
			notes = append(notes, "modified")
		}
		if len(notes) > 0 {
			b.WriteString(" (" + strings.Join(notes, ", ") + ")")
		}
	}
	b.WriteString(" " + goVersion)
	return b.String()
}
