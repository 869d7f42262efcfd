package netns

import (
	"fmt"
	"os/exec"
)

// runIn runs a command on the current thread's namespace (call it inside
// Do: the child inherits the thread's network namespace).
func runIn(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %v: %w: %s", name, args, err, out)
	}
	return nil
}
