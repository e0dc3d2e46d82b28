package meta

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestScramCredentialVerifiesPassword(t *testing.T) {
	for _, mech := range ScramMechanisms {
		c, err := NewScramCredential(mech, []byte("pencil"), []byte("salt-salt"), 4096)
		if err != nil {
			t.Fatal(err)
		}
		if !c.VerifyPassword(mech, []byte("pencil")) || c.VerifyPassword(mech, []byte("pencil ")) || c.VerifyPassword(mech, nil) {
			t.Fatalf("%s: verification does not tell the password apart", mech)
		}
		if msg := c.check(mech); msg != "" {
			t.Fatalf("%s: derived credential fails its own check: %s", mech, msg)
		}
	}
	// RFC 7677's example (password "pencil", its salt, 4096 iterations):
	// the server key other SCRAM implementations derive from it.
	c, err := NewScramCredential(ScramSHA256, []byte("pencil"), []byte("[m\x99h\x9d\x125\x8e\xec\xa0K\x14\x126\xfa\x81"), 4096)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(c.ServerKey)
	if got, want := string(b), `"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="`; got != want {
		t.Fatalf("RFC 7677 server key %s, want %s", got, want)
	}
	if _, err := NewScramCredential(ScramSHA256, []byte("x"), []byte("s"), 100); err == nil {
		t.Fatal("100 iterations accepted")
	}
}

func TestSetPassword(t *testing.T) {
	cmd, err := SetPassword("alice", []byte("pencil"), MinScramIterations)
	if err != nil {
		t.Fatal(err)
	}
	s := NewState()
	if r := s.alterCredentials(cmd); r.Code != OK {
		t.Fatalf("apply: %+v", r)
	}
	for _, mech := range ScramMechanisms {
		c := s.ScramCredential("alice", mech)
		if c == nil || !c.VerifyPassword(mech, []byte("pencil")) || c.VerifyPassword(mech, []byte("pencil ")) {
			t.Fatalf("%s: the credential does not check the password", mech)
		}
	}
	if string(cmd.Upsert[ScramSHA256].Salt) == string(cmd.Upsert[ScramSHA512].Salt) {
		t.Fatal("the mechanisms share a salt")
	}
	if _, err := SetPassword("alice", []byte("pencil"), 100); err == nil {
		t.Fatal("100 iterations accepted")
	}
}

func TestApplyAlterCredentials(t *testing.T) {
	good, _ := NewScramCredential(ScramSHA256, []byte("pw"), []byte("salt"), 4096)
	good512, _ := NewScramCredential(ScramSHA512, []byte("pw"), []byte("salt"), 4096)
	s := NewState()
	if res := s.Apply(1, Command{AlterCredentials: &AlterCredentials{User: "alice", Upsert: map[string]*ScramCredential{ScramSHA256: good, ScramSHA512: good512}}}); res.Code != OK {
		t.Fatal(res.Message)
	}
	before := s.Clone()
	tests := []struct {
		name string
		cmd  AlterCredentials
		code Code
		msg  string
	}{
		{"empty name", AlterCredentials{Upsert: map[string]*ScramCredential{ScramSHA256: good}}, ErrInvalidCredential, "empty"},
		{"control character", AlterCredentials{User: "a\nb", Upsert: map[string]*ScramCredential{ScramSHA256: good}}, ErrInvalidCredential, "control"},
		{"unknown mechanism", AlterCredentials{User: "bob", Upsert: map[string]*ScramCredential{"SCRAM-MD5": good}}, ErrInvalidCredential, "unknown SCRAM mechanism"},
		{"short key", AlterCredentials{User: "bob", Upsert: map[string]*ScramCredential{ScramSHA512: good}}, ErrInvalidCredential, "64 bytes"},
		{"few iterations", AlterCredentials{User: "bob", Upsert: map[string]*ScramCredential{ScramSHA256: {Salt: []byte("s"), Iterations: 1, StoredKey: good.StoredKey, ServerKey: good.ServerKey}}}, ErrInvalidCredential, "iterations"},
		{"delete missing", AlterCredentials{User: "bob", Delete: []string{ScramSHA256}}, ErrUnknownCredential, "no SCRAM-SHA-256"},
		{"set and delete", AlterCredentials{User: "alice", Upsert: map[string]*ScramCredential{ScramSHA256: good}, Delete: []string{ScramSHA256}}, ErrInvalidCredential, "both"},
		{"nothing", AlterCredentials{User: "alice"}, ErrInvalidCommand, "nothing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := tt.cmd
			res := s.Apply(2, Command{AlterCredentials: &cmd})
			if res.Code != tt.code || !strings.Contains(res.Message, tt.msg) {
				t.Fatalf("got %d %q, want %d containing %q", res.Code, res.Message, tt.code, tt.msg)
			}
			if len(s.Users) != 1 || len(s.Users["alice"].Scram) != 2 {
				t.Fatalf("a refused command changed the users: %v", s.Users)
			}
		})
	}
	if res := s.Apply(3, Command{AlterCredentials: &AlterCredentials{User: "alice", Delete: []string{ScramSHA256}}}); res.Code != OK {
		t.Fatal(res.Message)
	}
	if s.ScramCredential("alice", ScramSHA256) != nil || s.ScramCredential("alice", ScramSHA512) == nil {
		t.Fatal("deleting one mechanism")
	}
	if before.ScramCredential("alice", ScramSHA256) == nil {
		t.Fatal("a clone saw a later change")
	}
	if res := s.Apply(4, Command{AlterCredentials: &AlterCredentials{User: "alice", Delete: []string{ScramSHA512}}}); res.Code != OK {
		t.Fatal(res.Message)
	}
	if len(s.UserNames()) != 0 {
		t.Fatalf("a user without credentials remains: %v", s.UserNames())
	}
	// Credentials survive a snapshot (the meta shard's JSON).
	b, err := json.Marshal(before)
	if err != nil {
		t.Fatal(err)
	}
	var back State
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if c := back.ScramCredential("alice", ScramSHA512); c == nil || !c.VerifyPassword(ScramSHA512, []byte("pw")) {
		t.Fatal("credential lost in a snapshot round trip")
	}
}
