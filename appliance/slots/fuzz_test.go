package slots_test

import (
	"bytes"
	"testing"

	. "github.com/eddybroker/eddy/appliance/slots"
)

// FuzzCheckUKI feeds CheckUKI what an update push may carry: it must
// refuse or accept, never panic, and accept only an eddy UKI.
func FuzzCheckUKI(f *testing.F) {
	f.Add(eddyUKI("v1"))
	f.Add(fakeUKI(peMachine, map[string]string{".osrel": "ID=eddy\n"}))
	f.Add([]byte("MZ"))
	f.Fuzz(func(t *testing.T, b []byte) {
		osrel, err := CheckUKI(bytes.NewReader(b))
		if err == nil && osrel["ID"] != "eddy" {
			t.Fatalf("accepted %v", osrel)
		}
	})
}
