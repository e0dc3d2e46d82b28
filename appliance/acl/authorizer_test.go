package acl

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddybroker/eddy/raftgroups/meta"
)

const (
	topic   = kmsg.ACLResourceTypeTopic
	group   = kmsg.ACLResourceTypeGroup
	cluster = kmsg.ACLResourceTypeCluster

	opRead      = kmsg.ACLOperationRead
	opWrite     = kmsg.ACLOperationWrite
	opDescribe  = kmsg.ACLOperationDescribe
	opDelete    = kmsg.ACLOperationDelete
	opAlter     = kmsg.ACLOperationAlter
	opCreate    = kmsg.ACLOperationCreate
	opDescCfg   = kmsg.ACLOperationDescribeConfigs
	opAlterCfg  = kmsg.ACLOperationAlterConfigs
	opIdempWrit = kmsg.ACLOperationIdempotentWrite
)

// bind is a binding in the stored form: "allow User:alice read topic orders".
func bind(perm, principal, op, rtype, pattern, name string) meta.ACL {
	return meta.ACL{ResourceType: rtype, PatternType: pattern, ResourceName: name, Principal: principal, Host: "*", Operation: op, Permission: perm}
}

func allowTopic(principal, op, name string) meta.ACL {
	return bind(meta.ACLAllow, principal, op, meta.ACLTopic, meta.ACLLiteral, name)
}

func denyTopic(principal, op, name string) meta.ACL {
	return bind(meta.ACLDeny, principal, op, meta.ACLTopic, meta.ACLLiteral, name)
}

func prefixed(a meta.ACL) meta.ACL { a.PatternType = meta.ACLPrefixed; return a }

func fromHost(a meta.ACL, host string) meta.ACL { a.Host = host; return a }

func authorizer(cfg Config, acls ...meta.ACL) *Authorizer {
	cfg.Enabled = true
	return New(cfg, func() []meta.ACL { return acls })
}

var (
	alice = Subject{Principal: "User:alice", Addr: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 5000}}
	bob   = Subject{Principal: "User:bob", Addr: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 2), Port: 5000}}
)

func TestAllowed(t *testing.T) {
	type check struct {
		who  Subject
		op   kmsg.ACLOperation
		rt   kmsg.ACLResourceType
		name string
		want bool
	}
	tests := []struct {
		name   string
		cfg    Config
		acls   []meta.ACL
		checks []check
	}{
		{"no binding denies", Config{}, nil, []check{
			{alice, opRead, topic, "orders", false},
			{alice, opDescribe, cluster, meta.ACLClusterName, false},
		}},
		{"literal allow", Config{}, []meta.ACL{allowTopic("User:alice", "read", "orders")}, []check{
			{alice, opRead, topic, "orders", true},
			{alice, opRead, topic, "orders2", false},
			{alice, opWrite, topic, "orders", false},
			{bob, opRead, topic, "orders", false},
			{alice, opRead, group, "orders", false},
		}},
		{"wildcard resource and principal", Config{}, []meta.ACL{allowTopic("User:*", "write", "*")}, []check{
			{alice, opWrite, topic, "anything", true},
			{bob, opWrite, topic, "orders", true},
			{Subject{Principal: "Group:ops"}, opWrite, topic, "orders", false},
			{alice, opRead, topic, "orders", false},
		}},
		{"prefixed", Config{}, []meta.ACL{prefixed(allowTopic("User:alice", "read", "sensor."))}, []check{
			{alice, opRead, topic, "sensor.temp", true},
			{alice, opRead, topic, "sensor.", true},
			{alice, opRead, topic, "sensor", false},
			{alice, opRead, topic, "xsensor.temp", false},
		}},
		{"deny beats allow", Config{}, []meta.ACL{
			allowTopic("User:*", "all", "*"),
			denyTopic("User:bob", "write", "orders"),
			prefixed(denyTopic("User:alice", "read", "secret.")),
		}, []check{
			{alice, opWrite, topic, "orders", true},
			{bob, opWrite, topic, "orders", false},
			{bob, opRead, topic, "orders", true},
			{alice, opRead, topic, "secret.plans", false},
			{alice, opRead, topic, "public", true},
			// Denying READ does not deny DESCRIBE (Kafka).
			{alice, opDescribe, topic, "secret.plans", true},
		}},
		{"deny all", Config{}, []meta.ACL{allowTopic("User:alice", "read", "orders"), denyTopic("User:alice", "all", "*")}, []check{
			{alice, opRead, topic, "orders", false},
			{alice, opDescribe, topic, "orders", false},
		}},
		{"implied describe", Config{}, []meta.ACL{
			allowTopic("User:alice", "read", "r"), allowTopic("User:alice", "write", "w"),
			allowTopic("User:alice", "delete", "d"), allowTopic("User:alice", "alter", "a"),
			allowTopic("User:alice", "alter_configs", "ac"), allowTopic("User:alice", "create", "c"),
		}, []check{
			{alice, opDescribe, topic, "r", true},
			{alice, opDescribe, topic, "w", true},
			{alice, opDescribe, topic, "d", true},
			{alice, opDescribe, topic, "a", true},
			{alice, opDescCfg, topic, "ac", true},
			{alice, opDescribe, topic, "ac", false},
			{alice, opDescribe, topic, "c", false},
			{alice, opWrite, topic, "r", false},
			{alice, opDescCfg, topic, "a", false},
		}},
		{"all covers everything", Config{}, []meta.ACL{bind(meta.ACLAllow, "User:alice", "all", meta.ACLCluster, meta.ACLLiteral, meta.ACLClusterName)}, []check{
			{alice, opAlter, cluster, meta.ACLClusterName, true},
			{alice, opIdempWrit, cluster, meta.ACLClusterName, true},
			{alice, opAlter, topic, meta.ACLClusterName, false},
		}},
		{"super users", Config{SuperUsers: []string{"User:ops"}}, []meta.ACL{denyTopic("User:*", "all", "*")}, []check{
			{Subject{Principal: "User:ops"}, opDelete, topic, "orders", true},
			{Subject{Principal: AdminPrincipal}, opAlter, cluster, meta.ACLClusterName, true},
			{alice, opRead, topic, "orders", false},
		}},
		{"hosts", Config{}, []meta.ACL{
			fromHost(allowTopic("User:*", "read", "orders"), "10.0.0.1"),
			fromHost(denyTopic("User:*", "write", "*"), "10.0.0.2"),
			allowTopic("User:*", "write", "orders"),
		}, []check{
			{alice, opRead, topic, "orders", true},
			{bob, opRead, topic, "orders", false},
			{alice, opWrite, topic, "orders", true},
			{bob, opWrite, topic, "orders", false},
			{Subject{Principal: "User:carol", Addr: &net.UDPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 9}}, opRead, topic, "orders", true},
		}},
		{"groups and transactional ids", Config{}, []meta.ACL{
			bind(meta.ACLAllow, "User:alice", "read", meta.ACLGroup, meta.ACLPrefixed, "app-"),
			bind(meta.ACLAllow, "User:alice", "write", meta.ACLTransactionalID, meta.ACLLiteral, "tx"),
		}, []check{
			{alice, opRead, group, "app-1", true},
			{alice, opDescribe, group, "app-1", true},
			{alice, opDelete, group, "app-1", false},
			{alice, opRead, topic, "app-1", false},
			{alice, opWrite, kmsg.ACLResourceTypeTransactionalId, "tx", true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := authorizer(tt.cfg, tt.acls...)
			for _, c := range tt.checks {
				if got := a.Allowed(c.who, c.op, c.rt, c.name); got != c.want {
					t.Errorf("%s %s %s %q: got %v, want %v", c.who.Principal, c.op, c.rt, c.name, got, c.want)
				}
			}
		})
	}
}

func TestDisabledAllowsEverything(t *testing.T) {
	a := New(Config{}, func() []meta.ACL { return []meta.ACL{denyTopic("User:*", "all", "*")} })
	if !a.Allowed(alice, opWrite, topic, "orders") || !a.AllowedAny(alice, opWrite, topic) {
		t.Fatal("a disabled authorizer denied")
	}
	var none *Authorizer
	if none.Enabled() || !none.Allowed(alice, opWrite, topic, "orders") {
		t.Fatal("a nil authorizer denied")
	}
}

func TestAllowedAny(t *testing.T) {
	tests := []struct {
		name string
		acls []meta.ACL
		who  Subject
		want bool
	}{
		{"nothing", nil, alice, false},
		{"one literal", []meta.ACL{allowTopic("User:alice", "write", "orders")}, alice, true},
		{"someone else's", []meta.ACL{allowTopic("User:alice", "write", "orders")}, bob, false},
		{"literal denied", []meta.ACL{allowTopic("User:alice", "write", "orders"), denyTopic("User:alice", "write", "orders")}, alice, false},
		{"literal covered by a denied prefix", []meta.ACL{allowTopic("User:alice", "write", "orders"), prefixed(denyTopic("User:alice", "write", "ord"))}, alice, false},
		{"prefix covered by a shorter denied prefix", []meta.ACL{prefixed(allowTopic("User:alice", "write", "orders.")), prefixed(denyTopic("User:*", "all", "orders"))}, alice, false},
		{"prefix not covered by a longer one", []meta.ACL{prefixed(allowTopic("User:alice", "write", "orders.")), prefixed(denyTopic("User:alice", "write", "orders.eu"))}, alice, true},
		{"wildcard deny", []meta.ACL{allowTopic("User:alice", "write", "orders"), denyTopic("User:*", "write", "*")}, alice, false},
		{"other literal denied", []meta.ACL{allowTopic("User:alice", "write", "orders"), denyTopic("User:alice", "write", "logs")}, alice, true},
		{"read is not write", []meta.ACL{allowTopic("User:alice", "read", "orders")}, alice, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := authorizer(Config{}, tt.acls...).AllowedAny(tt.who, opWrite, topic); got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAuthorizedOperations(t *testing.T) {
	a := authorizer(Config{}, allowTopic("User:alice", "read", "orders"), allowTopic("User:alice", "alter_configs", "orders"))
	got := a.AuthorizedOperations(alice, topic, "orders")
	want := int32(1<<opRead | 1<<opDescribe | 1<<opAlterCfg | 1<<opDescCfg)
	if got != want {
		t.Fatalf("got %b, want %b", got, want)
	}
}

// TestBindingsChange checks that a new set from the source is used at the
// next check (the meta shard replaces the slice on every change).
func TestBindingsChange(t *testing.T) {
	var cur atomic.Pointer[[]meta.ACL]
	empty := []meta.ACL{}
	cur.Store(&empty)
	a := New(Config{Enabled: true}, func() []meta.ACL { return *cur.Load() })
	if a.Allowed(alice, opRead, topic, "orders") {
		t.Fatal("allowed before any binding")
	}
	one := []meta.ACL{allowTopic("User:alice", "read", "orders")}
	cur.Store(&one)
	if !a.Allowed(alice, opRead, topic, "orders") {
		t.Fatal("denied after the binding was added")
	}
	two := append([]meta.ACL{denyTopic("User:alice", "read", "orders")}, one...)
	cur.Store(&two)
	if a.Allowed(alice, opRead, topic, "orders") {
		t.Fatal("allowed after a deny was added")
	}
	cur.Store(&empty)
	if a.Allowed(alice, opRead, topic, "orders") {
		t.Fatal("allowed after the bindings were removed")
	}
}

// TestConcurrentChecks hammers checks while the set changes (run with -race).
func TestConcurrentChecks(t *testing.T) {
	var cur atomic.Pointer[[]meta.ACL]
	on := []meta.ACL{allowTopic("User:alice", "read", "orders")}
	off := []meta.ACL{allowTopic("User:bob", "read", "orders")}
	cur.Store(&on)
	a := New(Config{Enabled: true}, func() []meta.ACL { return *cur.Load() })
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				a.Allowed(alice, opRead, topic, "orders")
			}
		}()
	}
	for i := range 2000 {
		next := slicesOf(on, off, i)
		cur.Store(&next)
	}
	close(stop)
	wg.Wait()
	cur.Store(&on)
	if !a.Allowed(alice, opRead, topic, "orders") {
		t.Fatal("the last set was not the one used")
	}
}

func slicesOf(a, b []meta.ACL, i int) []meta.ACL {
	if i%2 == 0 {
		return append([]meta.ACL(nil), a...)
	}
	return append([]meta.ACL(nil), b...)
}

// benchACLs is a realistic set: 200 principals each with a literal topic,
// a prefixed topic and a group; a wildcard DESCRIBE; a few denies.
func benchACLs() []meta.ACL {
	var acls []meta.ACL
	for i := range 200 {
		p := fmt.Sprintf("User:svc-%d", i)
		acls = append(acls,
			allowTopic(p, "write", fmt.Sprintf("orders-%d", i)),
			prefixed(allowTopic(p, "read", fmt.Sprintf("events.%d.", i))),
			bind(meta.ACLAllow, p, "read", meta.ACLGroup, meta.ACLLiteral, fmt.Sprintf("app-%d", i)))
	}
	acls = append(acls, allowTopic("User:*", "describe", "*"), prefixed(denyTopic("User:*", "all", "internal.")),
		denyTopic("User:svc-7", "write", "orders-8"))
	return acls
}

// BenchmarkAllowed measures one check on the produce and fetch paths.
func BenchmarkAllowed(b *testing.B) {
	acls := benchACLs()
	a := New(Config{Enabled: true}, func() []meta.ACL { return acls })
	s := Subject{Principal: "User:svc-42", Addr: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 42), Port: 4242}}
	b.Run("literal", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if !a.Allowed(s, opWrite, topic, "orders-42") {
				b.Fatal("denied")
			}
		}
	})
	b.Run("prefixed", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if !a.Allowed(s, opRead, topic, "events.42.temperature") {
				b.Fatal("denied")
			}
		}
	})
	b.Run("denied", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if a.Allowed(s, opWrite, topic, "orders-43") {
				b.Fatal("allowed")
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if !a.Allowed(s, opWrite, topic, "orders-42") {
					b.Error("denied")
					return
				}
			}
		})
	})
	b.Run("disabled", func(b *testing.B) {
		off := New(Config{}, func() []meta.ACL { return acls })
		b.ReportAllocs()
		for range b.N {
			if !off.Allowed(s, opWrite, topic, "orders-42") {
				b.Fatal("denied")
			}
		}
	})
}
