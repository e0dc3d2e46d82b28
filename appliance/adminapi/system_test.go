package adminapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eddybroker/eddy/appliance"
	"github.com/eddybroker/eddy/appliance/nodecfg"
	"github.com/eddybroker/eddy/appliance/nodetest"
	"github.com/eddybroker/eddy/appliance/slots"
	"github.com/eddybroker/eddy/appliance/slots/slotstest"
	"github.com/eddybroker/eddy/sdk"
)

// boxSystem is appliance/boot's System minus the machine: real slots on
// a box's EFI partition in temporary directories, and a reboot that is
// only counted.
type boxSystem struct {
	slots   *slots.Slots
	reboots atomic.Int32
}

func (b *boxSystem) Status() slots.Status {
	st := slots.Status{Version: "v1", Updates: "enabled"}
	b.slots.Status(&st)
	return st
}

func (b *boxSystem) Update(_ context.Context, r io.Reader) (slots.Installed, error) {
	got, err := b.slots.Install(r)
	if err == nil {
		b.reboots.Add(1)
	}
	return got, err
}

// TestSystemUpdate: an update needs an authenticated admin even on an
// insecure node, is checked before it is written, lands in the other
// slot, and the node's status and the cluster's node list show the slots.
func TestSystemUpdate(t *testing.T) {
	box := slotstest.NewBox(t, "v1")
	sl, err := slots.Open(box.ESP, box.Vars, nil)
	if err != nil {
		t.Fatal(err)
	}
	sys := &boxSystem{slots: sl}
	n := nodetest.StartWith(t, appliance.Options{System: sys}, nodetest.WithConfig(func(c *nodecfg.Config) {
		c.AdminToken = "tok"
		c.Insecure = true
	}))

	if code, msg := adminCall(t, n, "POST", "/v1/system/update", "", slotstest.UKI("v2")); code != http.StatusUnauthorized || !strings.Contains(msg, "admin_token") {
		t.Fatalf("anonymous update: %d %q", code, msg)
	}
	if code, msg := adminCall(t, n, "POST", "/v1/system/update", "tok", []byte("#!/bin/sh\n")); code != http.StatusBadRequest || !strings.Contains(msg, "not a unified kernel image") {
		t.Fatalf("a script as an update: %d %q", code, msg)
	}
	if sys.reboots.Load() != 0 {
		t.Fatal("a refused update rebooted")
	}
	admin := &sdk.ClusterAdmin{URL: "http://" + n.Addrs().Admin, Token: "tok"}
	ctx := context.Background()
	var sent int64
	res, err := admin.PushUpdate(ctx, slotstest.UKI("v2"), func(s, _ int64) { sent = s })
	if err != nil {
		t.Fatal(err)
	}
	if res.Slot != "b" || res.Version != "v2" || sent != int64(len(slotstest.UKI("v2"))) || sys.reboots.Load() != 1 {
		t.Fatalf("update %+v, %d bytes reported sent, %d reboots", res, sent, sys.reboots.Load())
	}
	if v, err := box.Vars.Get(slots.LoaderEntryOneShot); err != nil || v != "eddy-b.efi" {
		t.Fatalf("one-shot entry %q %v", v, err)
	}

	st, err := admin.System(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != "v1" || st.Slot != "a" || st.State != "good" || len(st.Slots) != 2 || st.Slots[1].Version != "v2" || !st.Slots[0].Default {
		t.Fatalf("status %+v", st)
	}
	// The node list carries each node's system as the peer view last
	// polled it.
	var nodes []sdk.Node
	for range 100 {
		if nodes, err = admin.Nodes(ctx); err == nil && len(nodes) == 1 && nodes[0].System != nil && nodes[0].System.Slots[1].Version == "v2" {
			break
		}
		waitABit()
	}
	if len(nodes) != 1 || nodes[0].System == nil || nodes[0].System.Slot != "a" {
		b, _ := json.Marshal(nodes)
		t.Fatalf("nodes: %s (%v)", b, err)
	}
}

// TestSystemOfEddyServe: a node run by eddy serve reports its version and
// refuses updates, saying what to do instead.
func TestSystemOfEddyServe(t *testing.T) {
	n := nodetest.StartWith(t, appliance.Options{Version: "1.2.3"}, nodetest.WithConfig(func(c *nodecfg.Config) { c.AdminToken = "tok" }))
	admin := &sdk.ClusterAdmin{URL: "http://" + n.Addrs().Admin, Token: "tok"}
	st, err := admin.System(context.Background())
	if err != nil || st.Version != "1.2.3" || st.Slot != "" || !strings.Contains(st.Updates, "not an appliance") {
		t.Fatalf("status %+v %v", st, err)
	}
	if code, msg := adminCall(t, n, "POST", "/v1/system/update", "tok", slotstest.UKI("v2")); code != http.StatusNotImplemented || !strings.Contains(msg, "eddy serve") {
		t.Fatalf("update of eddy serve: %d %q", code, msg)
	}
}

func waitABit() { time.Sleep(100 * time.Millisecond) }
