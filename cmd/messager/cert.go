package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// STUB: replaced by the real command.
func newCertCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "cert",
		Short: "not built yet",
		RunE:  func(*cobra.Command, []string) error { return errors.New("cert: not built yet") },
	}
}
