package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// STUB: replaced by the real command.
func newUserCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "user",
		Short: "not built yet",
		RunE:  func(*cobra.Command, []string) error { return errors.New("user: not built yet") },
	}
}
