package netlab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// OpenTUN creates TUN device name inside network namespace ns ("" for the
// caller's own) and returns its file, non-blocking so reads go through the
// runtime's poller and Close wakes them. The device lives as long as the
// file is open.
func OpenTUN(ns, name string) (*os.File, error) {
	type result struct {
		f   *os.File
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// This thread may enter ns and is never handed back to the
		// scheduler: a goroutine that exits while locked takes its
		// thread with it.
		runtime.LockOSThread()
		if ns != "" {
			nsf, err := os.Open("/var/run/netns/" + ns)
			if err != nil {
				ch <- result{err: fmt.Errorf("open namespace %s: %w", ns, err)}
				return
			}
			defer nsf.Close()
			if err := unix.Setns(int(nsf.Fd()), unix.CLONE_NEWNET); err != nil {
				ch <- result{err: fmt.Errorf("enter namespace %s: %w", ns, err)}
				return
			}
		}
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			ch <- result{err: fmt.Errorf("open /dev/net/tun: %w", err)}
			return
		}
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			unix.Close(fd)
			ch <- result{err: err}
			return
		}
		ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
		if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
			unix.Close(fd)
			ch <- result{err: fmt.Errorf("create TUN %s in namespace %q: %w", name, ns, err)}
			return
		}
		ch <- result{f: os.NewFile(uintptr(fd), "tun-"+name)}
	}()
	r := <-ch
	return r.f, r.err
}

// IP runs the ip command (iproute2) and returns its output in the error.
func IP(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// CheckPrerequisites says what is missing to build a network here.
func CheckPrerequisites() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("netlab needs root: it creates network namespaces and TUN devices")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("netlab needs the ip command (Debian: iproute2): %w", err)
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return fmt.Errorf("netlab needs /dev/net/tun: %w", err)
	}
	return nil
}
