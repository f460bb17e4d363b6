package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/messager/messager/internal/certs"
)

// maxCertDays bounds --days so that the validity fits in a time.Duration.
const maxCertDays = 100 * 365

func newCertCmd() *cobra.Command {
	var (
		certFile, keyFile string
		hosts             []string
		force             bool
		days              int
	)
	cmd := &cobra.Command{
		Use:   "cert",
		Short: "Generate a self-signed TLS certificate and key",
		Long: `Generate a self-signed ECDSA P-256 certificate and its key for the server,
and print the certificate's fingerprint, which clients pin: "sha256:" and
the lowercase hex SHA-256 of the certificate.

The certificate is valid for the names given with --host (IP addresses or
DNS names), or by default for localhost, 127.0.0.1, ::1 and this machine's
host name. The key is written with mode 0600. Existing files are kept
unless --force is given.

"messager cert fingerprint" prints the fingerprint of an existing
certificate, for example the one a server made on its first start.`,
		Example: `  messager cert
  messager cert --host chat.example.org --host 192.0.2.7 --days 365
  messager cert fingerprint --cert /etc/messager/cert.pem`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError(fmt.Errorf("%s takes no arguments (see %q)", cmd.CommandPath(), cmd.CommandPath()+" --help"))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if days < 1 || days > maxCertDays {
				return usageError(fmt.Errorf("--days must be between 1 and %d, not %d", maxCertDays, days))
			}
			if len(hosts) == 0 {
				hosts = certs.DefaultHosts()
			}
			for _, h := range hosts {
				if strings.TrimSpace(h) == "" {
					return usageError(fmt.Errorf("--host must not be empty"))
				}
			}
			validFor := time.Duration(days) * 24 * time.Hour
			fp, err := certs.WriteNewValidFor(certFile, keyFile, hosts, validFor, force)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "messager: wrote %s and %s, valid for %s for %d days\n",
				certFile, keyFile, strings.Join(hosts, ", "), days)
			fmt.Fprintln(cmd.OutOrStdout(), fp)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&certFile, "cert", "cert.pem", "certificate `file` to write (PEM)")
	f.StringVar(&keyFile, "key", "key.pem", "private key `file` to write (PEM, mode 0600)")
	f.StringArrayVar(&hosts, "host", nil, "`name` or IP address the certificate is valid for (repeatable; default localhost, 127.0.0.1, ::1 and the host name)")
	f.BoolVar(&force, "force", false, "replace existing files")
	f.IntVar(&days, "days", 3650, "validity in `days`")
	cmd.AddCommand(newCertFingerprintCmd())
	return cmd
}

// maxCertFile bounds what cert fingerprint reads: a certificate chain is
// a few kilobytes.
const maxCertFile = 1 << 20

func newCertFingerprintCmd() *cobra.Command {
	var certFile string
	cmd := &cobra.Command{
		Use:   "fingerprint",
		Short: "Print the fingerprint of an existing certificate",
		Long: `Print the fingerprint of the certificate in --cert (PEM; the first
certificate of a chain), in the form clients pin and compare: "sha256:"
and the lowercase hex SHA-256 of the certificate.

Run it on the server to tell users which fingerprint their client should
show the first time it connects.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fp, err := certFingerprint(certFile)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), fp)
			return nil
		},
	}
	cmd.Flags().StringVar(&certFile, "cert", "cert.pem", "certificate `file` to read (PEM)")
	return cmd
}

// certFingerprint returns the fingerprint of the first certificate in the
// PEM file at path.
func certFingerprint(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("read certificate: %w", err)
	}
	defer f.Close()
	pem, err := io.ReadAll(io.LimitReader(f, maxCertFile+1))
	if err != nil {
		return "", fmt.Errorf("read certificate: %w", err)
	}
	if len(pem) > maxCertFile {
		return "", fmt.Errorf("read certificate: %s is larger than %d bytes", path, maxCertFile)
	}
	fp, err := certs.FingerprintPEM(pem)
	if err != nil {
		return "", fmt.Errorf("read certificate: %s: %w", path, err)
	}
	return fp, nil
}
