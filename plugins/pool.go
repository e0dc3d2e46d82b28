package plugins

import (
	"context"
	"slices"
	"sync"
)

// pool holds up to max instances of one plugin. An instance is either
// idle, lent to one caller, or being built; live counts all three.
type pool struct {
	max   int
	build func(ctx context.Context) (*instance, error)

	mu      sync.Mutex
	idle    []*instance
	live    int
	closed  bool
	waiters []chan struct{}
}

func newPool(max int, build func(context.Context) (*instance, error)) *pool {
	return &pool{max: max, build: build}
}

// get lends an idle instance, builds one if fewer than max are live, or
// waits for one until ctx is done.
func (p *pool) get(ctx context.Context) (*instance, error) {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, ErrClosed
		}
		if n := len(p.idle); n > 0 {
			in := p.idle[n-1]
			p.idle = p.idle[:n-1]
			p.mu.Unlock()
			return in, nil
		}
		if p.live < p.max {
			p.live++
			p.mu.Unlock()
			in, err := p.build(ctx)
			if err != nil {
				p.release()
				return nil, err
			}
			return in, nil
		}
		wake := make(chan struct{})
		p.waiters = append(p.waiters, wake)
		p.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			p.mu.Lock()
			if i := slices.Index(p.waiters, wake); i >= 0 {
				p.waiters = slices.Delete(p.waiters, i, i+1)
			} else {
				p.wakeOne() // we were woken: pass it on
			}
			p.mu.Unlock()
			return nil, ctx.Err()
		}
	}
}

// put returns a healthy instance.
func (p *pool) put(in *instance) {
	p.mu.Lock()
	if p.closed {
		p.live--
		p.mu.Unlock()
		in.close()
		return
	}
	p.idle = append(p.idle, in)
	p.wakeOne()
	p.mu.Unlock()
}

// discard closes an instance that must not be reused.
func (p *pool) discard(in *instance) {
	in.close()
	p.release()
}

// release gives back the slot of an instance that is gone or was never
// built.
func (p *pool) release() {
	p.mu.Lock()
	p.live--
	p.wakeOne()
	p.mu.Unlock()
}

// reserve takes a slot for a background build if the pool has none idle
// and room for one more.
func (p *pool) reserve() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.idle) > 0 || p.live >= p.max {
		return false
	}
	p.live++
	return true
}

func (p *pool) wakeOne() {
	if len(p.waiters) > 0 {
		close(p.waiters[0])
		p.waiters = p.waiters[1:]
	}
}

// counts reports live and idle instances.
func (p *pool) counts() (live, idle int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.live, len(p.idle)
}

// close closes the idle instances; lent ones are closed when they come
// back.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.live -= len(idle)
	for _, w := range p.waiters {
		close(w)
	}
	p.waiters = nil
	p.mu.Unlock()
	for _, in := range idle {
		in.close()
	}
}
