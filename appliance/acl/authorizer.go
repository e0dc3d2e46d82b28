package acl

import (
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddybroker/eddy/raftgroups/meta"
)

// AdminPrincipal is the principal of admin API requests that carry the
// node's admin token. It is always a super user, so the name is reserved:
// no authenticated client should be given it.
const AdminPrincipal = "User:admin"

// Config turns authorization on and names the super users.
type Config struct {
	// Enabled makes every request pass an ACL check; off, everything is
	// allowed (ACLs are still stored, and apply once it is turned on).
	Enabled bool
	// SuperUsers are principals ("User:ops") allowed everything without
	// ACLs. AdminPrincipal is always one.
	SuperUsers []string
}

// Subject is who asks: a principal ("User:alice") and the address the
// request came from, for bindings that name a host.
type Subject struct {
	Principal string
	Addr      net.Addr
}

// Authorizer answers whether a subject may perform an operation on a
// resource. It is safe for concurrent use; a nil *Authorizer allows
// everything.
type Authorizer struct {
	enabled bool
	super   map[string]bool
	source  func() []meta.ACL

	mu   sync.Mutex // serialises rebuilds
	snap atomic.Pointer[snapshot]
}

// New returns an authorizer that reads the current bindings from source
// (the meta shard's State.ACLs). source is called on every check and must
// be cheap; the slice it returns must never be modified, so that its
// identity tells a changed set.
func New(cfg Config, source func() []meta.ACL) *Authorizer {
	a := &Authorizer{enabled: cfg.Enabled, super: map[string]bool{AdminPrincipal: true}, source: source}
	for _, p := range cfg.SuperUsers {
		a.super[p] = true
	}
	a.snap.Store(build(nil))
	return a
}

// Enabled reports whether checks are made at all.
func (a *Authorizer) Enabled() bool { return a != nil && a.enabled }

// SuperUser reports whether p bypasses ACLs.
func (a *Authorizer) SuperUser(p string) bool { return a != nil && a.super[p] }

// Allowed reports whether s may perform op on the resource of type rt
// called name (the cluster's name is meta.ACLClusterName).
func (a *Authorizer) Allowed(s Subject, op kmsg.ACLOperation, rt kmsg.ACLResourceType, name string) bool {
	if !a.Enabled() || a.super[s.Principal] {
		return true
	}
	ix := a.current().index(rt)
	if ix == nil {
		return false
	}
	var host hostOf
	allowed := false
	check := func(entries []entry) bool {
		for i := range entries {
			e := &entries[i]
			if !e.matchesPrincipal(s.Principal) || !host.matches(e.host, s.Addr) {
				continue
			}
			if e.deny {
				if e.op == op || e.op == kmsg.ACLOperationAll {
					return false
				}
			} else if !allowed && implies(e.op, op) {
				allowed = true
			}
		}
		return true
	}
	if !check(ix.literal[name]) || !check(ix.literal[meta.ACLWildcard]) {
		return false
	}
	for _, n := range ix.prefixLens {
		if n > len(name) {
			break
		}
		if !check(ix.prefixed[name[:n]]) {
			return false
		}
	}
	return allowed
}

// AllowedAny reports whether s may perform op on at least one resource of
// type rt: an ALLOW that some resource matches and no DENY covers entirely.
// It is Kafka's authorizeByResourceType, used for InitProducerId (WRITE on
// any topic stands in for IDEMPOTENT_WRITE on the cluster since Kafka 3.0).
func (a *Authorizer) AllowedAny(s Subject, op kmsg.ACLOperation, rt kmsg.ACLResourceType) bool {
	if !a.Enabled() || a.super[s.Principal] {
		return true
	}
	ix := a.current().index(rt)
	if ix == nil {
		return false
	}
	var host hostOf
	var deniedLiterals map[string]bool
	var deniedPrefixes []string
	for _, e := range ix.all {
		if !e.deny || (e.op != op && e.op != kmsg.ACLOperationAll) || !e.matchesPrincipal(s.Principal) || !host.matches(e.host, s.Addr) {
			continue
		}
		switch {
		case e.prefixed:
			deniedPrefixes = append(deniedPrefixes, e.name)
		case e.name == meta.ACLWildcard:
			return false
		default:
			if deniedLiterals == nil {
				deniedLiterals = map[string]bool{}
			}
			deniedLiterals[e.name] = true
		}
	}
	coveredByPrefix := func(name string) bool {
		return slices.ContainsFunc(deniedPrefixes, func(p string) bool { return strings.HasPrefix(name, p) })
	}
	for _, e := range ix.all {
		if e.deny || !implies(e.op, op) || !e.matchesPrincipal(s.Principal) || !host.matches(e.host, s.Addr) {
			continue
		}
		if e.prefixed {
			if !coveredByPrefix(e.name) {
				return true
			}
			continue
		}
		if e.name == meta.ACLWildcard || (!deniedLiterals[e.name] && !coveredByPrefix(e.name)) {
			return true
		}
	}
	return false
}

// resourceOps are the operations that apply to each resource type, as
// Kafka reports them in authorized-operations bitfields (KIP-430).
var resourceOps = map[kmsg.ACLResourceType][]kmsg.ACLOperation{
	kmsg.ACLResourceTypeTopic: {kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationCreate, kmsg.ACLOperationDelete,
		kmsg.ACLOperationAlter, kmsg.ACLOperationDescribe, kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs},
	kmsg.ACLResourceTypeGroup: {kmsg.ACLOperationRead, kmsg.ACLOperationDescribe, kmsg.ACLOperationDelete},
	kmsg.ACLResourceTypeCluster: {kmsg.ACLOperationCreate, kmsg.ACLOperationClusterAction, kmsg.ACLOperationDescribeConfigs,
		kmsg.ACLOperationAlterConfigs, kmsg.ACLOperationIdempotentWrite, kmsg.ACLOperationAlter, kmsg.ACLOperationDescribe},
}

// AuthorizedOperations is the KIP-430 bitfield (bit n set: operation n
// allowed) of what s may do on a resource.
func (a *Authorizer) AuthorizedOperations(s Subject, rt kmsg.ACLResourceType, name string) int32 {
	var bits int32
	for _, op := range resourceOps[rt] {
		if a.Allowed(s, op, rt, name) {
			bits |= 1 << op
		}
	}
	return bits
}

// implies reports whether a binding for op covers the requested want.
func implies(op, want kmsg.ACLOperation) bool {
	if op == want || op == kmsg.ACLOperationAll {
		return true
	}
	switch want {
	case kmsg.ACLOperationDescribe:
		return op == kmsg.ACLOperationRead || op == kmsg.ACLOperationWrite || op == kmsg.ACLOperationDelete || op == kmsg.ACLOperationAlter
	case kmsg.ACLOperationDescribeConfigs:
		return op == kmsg.ACLOperationAlterConfigs
	}
	return false
}

// current returns the index of the bindings source returns now, building
// it if they changed since the last call.
func (a *Authorizer) current() *snapshot {
	acls := a.source()
	if s := a.snap.Load(); s.same(acls) {
		return s
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	acls = a.source()
	if s := a.snap.Load(); s.same(acls) {
		return s
	}
	s := build(acls)
	a.snap.Store(s)
	return s
}

// snapshot is the compiled form of one set of bindings. Immutable.
type snapshot struct {
	// first and n identify the source slice (copy-on-write in meta).
	first *meta.ACL
	n     int
	types [kmsg.ACLResourceTypeUser + 1]*index
}

func (s *snapshot) same(acls []meta.ACL) bool {
	if len(acls) != s.n {
		return false
	}
	return s.n == 0 || &acls[0] == s.first
}

func (s *snapshot) index(rt kmsg.ACLResourceType) *index {
	if rt < 0 || int(rt) >= len(s.types) {
		return nil
	}
	return s.types[rt]
}

// index holds one resource type's bindings by how they match a name.
type index struct {
	literal  map[string][]entry // by name, "*" included
	prefixed map[string][]entry // by prefix
	// prefixLens are the distinct prefix lengths, ascending: a lookup
	// tries name[:n] for each, rather than every prefix of the name.
	prefixLens []int
	all        []entry
}

// entry is one binding within its resource type.
type entry struct {
	principal string
	// principalType is set for "Type:*": every principal of that type.
	principalType string
	host          string
	name          string
	prefixed      bool
	op            kmsg.ACLOperation
	deny          bool
}

func (e *entry) matchesPrincipal(p string) bool {
	if e.principalType != "" {
		return len(p) > len(e.principalType) && strings.HasPrefix(p, e.principalType)
	}
	return e.principal == p
}

func build(acls []meta.ACL) *snapshot {
	s := &snapshot{n: len(acls)}
	if len(acls) > 0 {
		s.first = &acls[0]
	}
	for _, a := range acls {
		c, ok := compile(a)
		if !ok {
			continue // validated when stored; a newer node's value is skipped
		}
		ix := s.types[c.rt]
		if ix == nil {
			ix = &index{literal: map[string][]entry{}, prefixed: map[string][]entry{}}
			s.types[c.rt] = ix
		}
		e := entry{principal: a.Principal, host: a.Host, name: c.name, prefixed: c.prefixed, op: c.op, deny: c.deny}
		if typ, ok := strings.CutSuffix(a.Principal, ":*"); ok {
			e.principalType = typ + ":"
		}
		ix.all = append(ix.all, e)
		if c.prefixed {
			ix.prefixed[c.name] = append(ix.prefixed[c.name], e)
			if !slices.Contains(ix.prefixLens, len(c.name)) {
				ix.prefixLens = append(ix.prefixLens, len(c.name))
			}
		} else {
			ix.literal[c.name] = append(ix.literal[c.name], e)
		}
	}
	for _, ix := range s.types {
		if ix != nil {
			slices.Sort(ix.prefixLens)
		}
	}
	return s
}

// hostOf computes the client's host once per check, and only when a
// binding names a specific host.
type hostOf struct {
	done bool
	host string
}

func (h *hostOf) matches(want string, addr net.Addr) bool {
	if want == meta.ACLWildcard {
		return true
	}
	if !h.done {
		h.done = true
		h.host = HostOf(addr)
	}
	return h.host == want
}

// HostOf returns the IP address of addr as ACLs name hosts ("10.0.0.7",
// "::1"); "" when addr carries none.
func HostOf(addr net.Addr) string {
	switch a := addr.(type) {
	case *net.TCPAddr:
		return a.IP.String()
	case *net.UDPAddr:
		return a.IP.String()
	case nil:
		return ""
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	return host
}
