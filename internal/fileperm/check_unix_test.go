//go:build unix

package fileperm

import (
	"cmp"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name    string
		file    os.FileMode
		dir     os.FileMode
		want    []string // one substring per problem, in order; "%f" and "%d" stand for the file and directory
		dirName string   // if set, the directory's name, for quoting
	}{
		{name: "private", file: 0o600, dir: 0o700},
		{name: "read only", file: 0o400, dir: 0o755},
		{name: "execute bits only", file: 0o711, dir: 0o711},
		{name: "readable by all", file: 0o644, dir: 0o700,
			want: []string{"%f can be read by group and others (mode 0644): run chmod 600 %f"}},
		{name: "readable by group", file: 0o640, dir: 0o700,
			want: []string{"%f can be read by group (mode 0640): run chmod 600 %f"}},
		{name: "readable by others", file: 0o604, dir: 0o700,
			want: []string{"%f can be read by others (mode 0604)"}},
		{name: "writable by others", file: 0o602, dir: 0o700,
			want: []string{"%f can be written by others (mode 0602)"}},
		{name: "group reads, others read and write", file: 0o646, dir: 0o700,
			want: []string{"%f can be read by group and read and written by others (mode 0646)"}},
		{name: "open to all", file: 0o666, dir: 0o700,
			want: []string{"%f can be read and written by group and others (mode 0666): run chmod 600 %f"}},
		{name: "read only for all", file: 0o444, dir: 0o700,
			want: []string{"(mode 0444): run chmod 400 %f"}},
		{name: "no owner bits", file: 0o044, dir: 0o700,
			want: []string{"(mode 0044): run chmod 600 %f"}},
		{name: "directory writable by all", file: 0o600, dir: 0o777,
			want: []string{"directory %d can be written by group and others (mode 0777), who could replace %f: run chmod go-w %d"}},
		{name: "directory writable by group", file: 0o600, dir: 0o770,
			want: []string{"directory %d can be written by group (mode 0770), who could replace %f: run chmod g-w %d"}},
		{name: "directory writable by others", file: 0o600, dir: 0o757,
			want: []string{"directory %d can be written by others (mode 0757), who could replace %f: run chmod o-w %d"}},
		{name: "sticky directory", file: 0o600, dir: 0o777 | os.ModeSticky},
		{name: "file and directory", file: 0o644, dir: 0o777,
			want: []string{"%f can be read by group and others", "directory %d can be written by group and others"}},
		{name: "path with a space", file: 0o644, dir: 0o777, dirName: "my keys",
			want: []string{"run chmod 600 '%f'", "run chmod go-w '%d'"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), cmp.Or(tc.dirName, "etc"))
			file := filepath.Join(dir, "user.csv")
			mkdir(t, dir)
			writeFile(t, file)
			chmod(t, file, tc.file)
			chmod(t, dir, tc.dir)
			got := Check(file)
			checkProblems(t, got, tc.want, file, dir)
		})
	}
}

func TestCheckSymlink(t *testing.T) {
	root := t.TempDir()
	linkDir, targetDir := filepath.Join(root, "conf"), filepath.Join(root, "shared")
	mkdir(t, linkDir)
	mkdir(t, targetDir)
	target := filepath.Join(targetDir, "key.pem")
	link := filepath.Join(linkDir, "key.pem")
	writeFile(t, target)
	if err := os.Symlink(target, link); err != nil {
		t.Skip("no symbolic links:", err)
	}

	// The link's own mode (0777 on Linux) is not the file's.
	chmod(t, target, 0o600)
	if got := Check(link); len(got) != 0 {
		t.Fatalf("Check of a link to a private file = %q", got)
	}

	chmod(t, target, 0o640)
	chmod(t, targetDir, 0o777)
	chmod(t, linkDir, 0o775)
	checkProblems(t, Check(link), []string{
		link + " (a symbolic link to " + target + ") can be read by group (mode 0640): run chmod 600 " + target,
		"directory " + linkDir + " can be written by group (mode 0775), who could replace " + link,
		"directory " + targetDir + " can be written by group and others (mode 0777), who could replace " + link,
	}, target, targetDir)
}

func TestCheckCannot(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.csv")
	checkProblems(t, Check(missing), []string{"cannot check the permissions of " + missing + ": no such file or directory"}, missing, "")

	dir := t.TempDir()
	link := filepath.Join(dir, "dangling")
	if err := os.Symlink(filepath.Join(dir, "gone"), link); err != nil {
		t.Skip("no symbolic links:", err)
	}
	checkProblems(t, Check(link), []string{"cannot check the permissions of " + link + ": "}, link, dir)
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"user.csv":            "user.csv",
		"/etc/messager/k.pem": "/etc/messager/k.pem",
		"my keys/k.pem":       "'my keys/k.pem'",
		"it's":                `'it'\''s'`,
		"$HOME":               "'$HOME'",
		"":                    "''",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

// checkProblems checks that got holds one problem per want, in order,
// each containing its want with %f and %d replaced by file and dir, and
// that each is a lowercase sentence.
func checkProblems(t *testing.T, got, want []string, file, dir string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("Check = %q, want %d problems like %q", got, len(want), want)
	}
	for i, w := range want {
		w = strings.NewReplacer("%f", file, "%d", dir).Replace(w)
		if !strings.Contains(got[i], w) {
			t.Errorf("problem %d = %q, want it to contain %q", i, got[i], w)
		}
		if s := got[i]; s == "" || strings.ToLower(s[:1]) != s[:1] || strings.HasSuffix(s, ".") {
			t.Errorf("problem %q is not a lowercase message", s)
		}
	}
	if slices.Contains(got, "") {
		t.Errorf("empty problem in %q", got)
	}
}

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// Let TempDir's cleanup remove what is inside even after a chmod.
	t.Cleanup(func() { os.Chmod(dir, 0o700) })
}

func writeFile(t *testing.T, p string) {
	t.Helper()
	if err := os.WriteFile(p, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func chmod(t *testing.T, p string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}
