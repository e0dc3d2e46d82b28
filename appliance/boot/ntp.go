//go:build linux

package boot

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/beevik/ntp"
	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// What setClock does, as a clockSync's defaults.
const (
	// ntpBootWait bounds the boot's wait for a first answer, before the
	// broker starts.
	ntpBootWait = 10 * time.Second
	// ntpQueryTimeout bounds one server's answer.
	ntpQueryTimeout = 3 * time.Second
	// ntpStepOver is the offset above which the clock is stepped; a
	// smaller one is left alone (eddy does not slew).
	ntpStepOver = time.Second
	// Without an answer the servers are tried again after 5 s, 10 s, ...
	// up to 5 min; with one, every hour.
	ntpRetryMin = 5 * time.Second
	ntpRetryMax = 5 * time.Minute
	ntpResync   = time.Hour
)

// setClock sets the clock from the NTP servers (host names or IP
// addresses, port 123 unless given) before the broker starts: it waits up
// to 10 s for one to answer and steps the clock when it is off by more than
// a second. Either way it keeps at it in the background until ctx ends:
// retrying with backoff while no server answers, then checking every hour.
func setClock(ctx context.Context, log zerolog.Logger, servers []string) {
	newClockSync(log, servers).start(ctx)
}

// clockSync queries NTP servers and steps a clock. Tests replace now and
// step, so they never touch the host's clock.
type clockSync struct {
	log     zerolog.Logger
	servers []string
	// now is the clock being set, as the NTP client reads it; nil is the
	// system clock (with the kernel's receive time stamps).
	now func() time.Time
	// step moves the clock by offset.
	step func(offset time.Duration) error

	bootWait, queryTimeout, stepOver time.Duration
	retryMin, retryMax, resync       time.Duration
}

func newClockSync(log zerolog.Logger, servers []string) *clockSync {
	return &clockSync{
		log: log, servers: servers, step: stepSystemClock,
		bootWait: ntpBootWait, queryTimeout: ntpQueryTimeout, stepOver: ntpStepOver,
		retryMin: ntpRetryMin, retryMax: ntpRetryMax, resync: ntpResync,
	}
}

// stepSystemClock moves the system clock (CLOCK_REALTIME) by offset.
func stepSystemClock(offset time.Duration) error {
	ts := unix.NsecToTimespec(time.Now().Add(offset).UnixNano())
	if err := unix.ClockSettime(unix.CLOCK_REALTIME, &ts); err != nil {
		return fmt.Errorf("clock_settime: %w", err)
	}
	return nil
}

// start tries for up to bootWait to set the clock, then leaves a goroutine
// keeping it set until ctx ends.
func (c *clockSync) start(ctx context.Context) {
	begin := time.Now()
	boot, cancel := context.WithTimeout(ctx, c.bootWait)
	synced := false
	var err error
	for {
		if synced, err = c.sync(boot, true); synced || boot.Err() != nil {
			break
		}
		select {
		case <-boot.Done():
		case <-time.After(time.Second):
		}
	}
	cancel()
	if ctx.Err() != nil {
		return
	}
	if !synced {
		c.log.Warn().Err(err).Strs("ntp", c.servers).Dur("waited", time.Since(begin).Round(time.Millisecond)).Dur("retry_in", c.retryMin).
			Msg("no NTP server answered; the clock stays as the hardware has it until one does")
	}
	go c.keep(ctx, synced)
}

// keep retries with backoff until a server answers, then checks the clock
// every resync, until ctx ends.
func (c *clockSync) keep(ctx context.Context, synced bool) {
	backoff := c.retryMin
	for {
		wait := c.resync
		if !synced {
			wait = backoff
			backoff = min(2*backoff, c.retryMax)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		var err error
		if synced, err = c.sync(ctx, false); synced {
			backoff = c.retryMin
		} else if ctx.Err() == nil {
			c.log.Warn().Err(err).Strs("ntp", c.servers).Dur("retry_in", backoff).Msg("NTP: no server answered")
		}
	}
}

// sync queries the servers once and steps the clock if it is off by more
// than stepOver. It reports whether the clock is now set.
func (c *clockSync) sync(ctx context.Context, boot bool) (bool, error) {
	offset, server, err := c.query(ctx)
	if err != nil {
		return false, err
	}
	if offset.Abs() <= c.stepOver {
		ev := c.log.Debug()
		if boot {
			ev = c.log.Info()
		}
		ev.Str("server", server).Stringer("offset", offset.Round(time.Millisecond)).Msg("clock in sync with NTP")
		return true, nil
	}
	if err := c.step(offset); err != nil {
		c.log.Error().Err(err).Str("server", server).Stringer("offset", offset.Round(time.Millisecond)).Msg("setting the clock")
		return false, fmt.Errorf("setting the clock: %w", err)
	}
	c.log.Info().Str("server", server).Stringer("offset", offset.Round(time.Millisecond)).Str("now", c.clock().UTC().Format(time.RFC3339)).Msg("clock stepped from NTP")
	return true, nil
}

func (c *clockSync) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

// query asks the servers in order and returns the clock's offset from the
// first that gives a usable answer (add it to the clock to be right).
func (c *clockSync) query(ctx context.Context) (time.Duration, string, error) {
	var errs []error
	for _, s := range c.servers {
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		offset, err := c.queryOne(ctx, s)
		if err == nil {
			return offset, s, nil
		}
		errs = append(errs, err)
		c.log.Debug().Err(err).Str("server", s).Msg("NTP server did not answer")
	}
	if len(errs) == 0 {
		return 0, "", errors.New("ntp: no servers")
	}
	return 0, "", fmt.Errorf("ntp: %w", errors.Join(errs...))
}

// queryOne asks one server, for at most queryTimeout and never past ctx.
func (c *clockSync) queryOne(ctx context.Context, server string) (time.Duration, error) {
	timeout := c.queryTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(d))
	}
	if timeout <= 0 {
		return 0, fmt.Errorf("%s: %w", server, context.DeadlineExceeded)
	}
	// The library resolves and dials without a context; this dialer ends
	// the query (the name look-up included) when ctx does. The connection
	// stays a *net.UDPConn, so the library reads the kernel's receive time
	// stamps.
	var stop func() bool
	opts := ntp.QueryOptions{
		Timeout:       timeout,
		GetSystemTime: c.now,
		Dialer: func(local, remote string) (net.Conn, error) {
			dctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			d := net.Dialer{}
			if local != "" {
				d.LocalAddr = &net.UDPAddr{IP: net.ParseIP(local)}
			}
			conn, err := d.DialContext(dctx, "udp", remote)
			if err != nil {
				return nil, err
			}
			stop = context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
			return conn, nil
		},
	}
	r, err := ntp.QueryWithOptions(server, opts)
	if stop != nil {
		stop()
	}
	if err != nil {
		return 0, fmt.Errorf("%s: %w", server, err)
	}
	if err := r.Validate(); err != nil {
		return 0, fmt.Errorf("%s: unusable answer: %w", server, err)
	}
	return r.ClockOffset, nil
}
