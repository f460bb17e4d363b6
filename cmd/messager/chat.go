package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// STUB: replaced by the real command.
func newChatCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "chat",
		Short: "not built yet",
		RunE:  func(*cobra.Command, []string) error { return errors.New("chat: not built yet") },
	}
}
