// Package fileperm warns about secret files, such as the user file and the
// TLS private key, that other users of the machine can read or replace.
package fileperm

// Check reports the ways the secret file at path is open to other users,
// one message per problem, each naming the path and the command that fixes
// it; nil means nothing to report. The caller decides what to do with
// them: a server logs them as warnings at start.
//
// It reports:
//   - a file that its group or others can read or write (mode & 0o066):
//     "user.csv can be read by group and others (mode 0644): run chmod 600
//     user.csv". Execute bits alone expose nothing and are not reported.
//   - a directory holding the file that its group or others can write,
//     since they could then replace the file with one of their own; a
//     directory with the sticky bit (like /tmp) is not reported, as there
//     only a file's owner may rename or remove it. Only the file's own
//     directory is checked, not those above it.
//
// A symbolic link is followed: the messages say so, the file checked is
// the link's final target, and both the link's directory and the target's
// are checked. A path that cannot be examined is reported as such.
//
// On systems other than Unix the mode bits do not describe who can read a
// file, and Check returns nil.
func Check(path string) []string {
	return check(path)
}
