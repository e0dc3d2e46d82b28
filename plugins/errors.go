package plugins

import (
	"errors"
	"fmt"

	"github.com/eddybroker/eddy/plugins/abi"
)

var (
	// ErrFailed is returned by calls once a plugin has failed
	// FailuresBeforeFailed times in a row, wrapped together with the last
	// failure. Plugin.Reset clears it.
	ErrFailed = errors.New("plugins: the plugin failed repeatedly and is disabled")
	// ErrRefused wraps every reason Inspect or Load refuse a module.
	ErrRefused = errors.New("plugins: module refused")
	// ErrNoHook: the module does not implement the hook called.
	ErrNoHook = errors.New("plugins: the module does not implement this hook")
	// ErrTimeout: the call ran past CallTimeout and the instance was
	// stopped.
	ErrTimeout = errors.New("plugins: the call ran past its time budget")
	// ErrCrashed: the guest trapped or exited.
	ErrCrashed = errors.New("plugins: the guest trapped or exited")
	// ErrBadOutput: the guest broke the ABI (a pointer or length out of
	// bounds, an output too big, a block that does not parse).
	ErrBadOutput = errors.New("plugins: the guest broke the ABI")
	// ErrClosed: the plugin or host is closed.
	ErrClosed = errors.New("plugins: closed")
)

// StatusError is a hook's negative status with the message the guest gave
// through eddy_last_error. The plugin handled the call and said no; the
// instance is kept and no failure is counted.
type StatusError struct {
	Hook    string // export name, e.g. abi.ExportValidate
	Status  int32  // abi.Status*
	Message string // eddy_last_error, cut to 1 KiB
}

func (e *StatusError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("%s returned %d (%s)", e.Hook, e.Status, abi.StatusText(e.Status))
	}
	return fmt.Sprintf("%s returned %d (%s): %s", e.Hook, e.Status, abi.StatusText(e.Status), e.Message)
}

func refused(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrRefused, fmt.Sprintf(format, args...))
}

// Is makes a StatusNoHook status match ErrNoHook: the guest kit exports
// every hook and answers StatusNoHook for those without a handler.
func (e *StatusError) Is(target error) bool {
	return target == ErrNoHook && e.Status == abi.StatusNoHook
}
