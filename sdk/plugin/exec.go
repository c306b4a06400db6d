package plugin

import (
	"context"
	"os/exec"
	"time"
)

// command builds the command that starts a plugin. A fresh exec.Cmd is
// needed for every start: one cannot be run twice.
func command(path string, args ...string) *exec.Cmd {
	return exec.Command(path, args...)
}

// commandContext is command bounded by ctx; a plugin that ignores the
// interrupt is killed a second later.
func commandContext(ctx context.Context, path string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.WaitDelay = time.Second
	return cmd
}
