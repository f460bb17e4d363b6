package main

import (
	"runtime/debug"
	"testing"
)

func TestFormatVersion(t *testing.T) {
	vcs := []debug.BuildSetting{
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567"},
		{Key: "vcs.time", Value: "2025-06-01T12:00:00Z"},
		{Key: "vcs.modified", Value: "true"},
	}
	tests := []struct {
		name string
		info *debug.BuildInfo
		want string
	}{
		{"release", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.0"}},
			"messager v1.2.0 go1.26.8"},
		{"commit", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: vcs},
			"messager (devel) commit 0a1b2c3d4e5f (2025-06-01T12:00:00Z, modified) go1.26.8"},
		{"clean commit", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.1-0.20250601120000-0a1b2c3d4e5f"}, Settings: vcs[:3]},
			"messager v1.2.1-0.20250601120000-0a1b2c3d4e5f commit 0a1b2c3d4e5f (2025-06-01T12:00:00Z) go1.26.8"},
		{"nothing recorded", &debug.BuildInfo{GoVersion: "go1.26.8"}, "messager (devel) go1.26.8"},
	}
	for _, tt := range tests {
		if got := formatVersion(tt.info); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}
