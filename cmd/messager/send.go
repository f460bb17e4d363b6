package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// STUB: replaced by the real command.
func newSendCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "send",
		Short: "not built yet",
		RunE:  func(*cobra.Command, []string) error { return errors.New("send: not built yet") },
	}
}
