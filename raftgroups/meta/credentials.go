package meta

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
	"maps"
	"slices"
	"unicode/utf8"
)

// SCRAM mechanisms, by their SASL names. A user may hold a credential for
// either or both; each is salted and hashed on its own.
const (
	ScramSHA256 = "SCRAM-SHA-256"
	ScramSHA512 = "SCRAM-SHA-512"
)

// ScramMechanisms lists the SCRAM mechanisms eddy stores credentials for,
// in the order PLAIN tries them.
var ScramMechanisms = []string{ScramSHA256, ScramSHA512}

// Bounds on a SCRAM credential, Kafka's: fewer iterations are too cheap
// to brute-force, more make every login slow.
const (
	MinScramIterations = 4096
	MaxScramIterations = 16384
	// MaxUserNameLen bounds a user name; Kafka has no limit, but a name is
	// part of every principal and ACL.
	MaxUserNameLen = 256
	maxSaltLen     = 1024
)

// ScramCredential is a user's salted credential for one SCRAM mechanism
// (RFC 5802 §3): enough for the server to check a client's proof, and not
// enough to log in as the user. Neither the password nor the salted
// password is ever stored.
type ScramCredential struct {
	Salt       []byte `json:"salt"`
	Iterations int32  `json:"iterations"`
	// StoredKey is H(HMAC(SaltedPassword, "Client Key")).
	StoredKey []byte `json:"stored_key"`
	// ServerKey is HMAC(SaltedPassword, "Server Key").
	ServerKey []byte `json:"server_key"`
}

// User is a SASL user: its SCRAM credentials by mechanism. Credentials are
// never modified in place (commands replace them), so clones share them.
type User struct {
	Name  string                      `json:"name"`
	Scram map[string]*ScramCredential `json:"scram"`
}

// AlterCredentials changes one user's SCRAM credentials: Upsert sets a
// credential per mechanism, Delete removes the named mechanisms. A user
// left with no credential is removed. The proposer derives the
// credentials from the salted password, so the log never holds anything
// a client could log in with.
type AlterCredentials struct {
	User   string                      `json:"user"`
	Upsert map[string]*ScramCredential `json:"upsert,omitempty"`
	Delete []string                    `json:"delete,omitempty"`
}

// Codes of credential commands; numbered apart from the others so that
// parallel additions do not collide.
const (
	ErrUnknownCredential Code = 20
	ErrInvalidCredential Code = 21
)

// ScramHash returns the hash function of a SCRAM mechanism.
func ScramHash(mechanism string) (func() hash.Hash, bool) {
	switch mechanism {
	case ScramSHA256:
		return sha256.New, true
	case ScramSHA512:
		return sha512.New, true
	}
	return nil, false
}

// ValidateUserName checks a SASL user name: 1 to 256 bytes of UTF-8
// without control characters (a name travels in SASL messages, principals
// and logs).
func ValidateUserName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("user name is empty")
	case len(name) > MaxUserNameLen:
		return fmt.Errorf("user name is %d bytes long, the limit is %d", len(name), MaxUserNameLen)
	case !utf8.ValidString(name):
		return fmt.Errorf("user name %q is not UTF-8", name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("user name %q has a control character", name)
		}
	}
	return nil
}

// NewScramCredential derives the credential for password, salted with
// salt over iterations rounds of PBKDF2 (RFC 5802's Hi). It costs
// iterations HMACs: call it off any hot path.
func NewScramCredential(mechanism string, password, salt []byte, iterations int32) (*ScramCredential, error) {
	h, ok := ScramHash(mechanism)
	if !ok {
		return nil, fmt.Errorf("unknown SCRAM mechanism %q", mechanism)
	}
	if iterations < MinScramIterations || iterations > MaxScramIterations {
		return nil, fmt.Errorf("%d iterations is outside %d..%d", iterations, MinScramIterations, MaxScramIterations)
	}
	salted, err := pbkdf2.Key(h, string(password), salt, int(iterations), h().Size())
	if err != nil {
		return nil, fmt.Errorf("derive %s credential: %w", mechanism, err)
	}
	return ScramCredentialFromSalted(mechanism, salt, salted, iterations)
}

// SetPassword is the command that sets user's password: a credential for
// each of ScramMechanisms, freshly salted, over iterations rounds. Like
// NewScramCredential it is slow on purpose.
func SetPassword(user string, password []byte, iterations int32) (*AlterCredentials, error) {
	cmd := &AlterCredentials{User: user, Upsert: make(map[string]*ScramCredential, len(ScramMechanisms))}
	for _, mech := range ScramMechanisms {
		salt := make([]byte, 24)
		_, _ = rand.Read(salt) // crypto/rand.Read never fails
		cred, err := NewScramCredential(mech, password, salt, iterations)
		if err != nil {
			return nil, err
		}
		cmd.Upsert[mech] = cred
	}
	return cmd, nil
}

// ScramCredentialFromSalted derives the stored credential from a salted
// password (what AlterUserScramCredentials carries).
func ScramCredentialFromSalted(mechanism string, salt, saltedPassword []byte, iterations int32) (*ScramCredential, error) {
	h, ok := ScramHash(mechanism)
	if !ok {
		return nil, fmt.Errorf("unknown SCRAM mechanism %q", mechanism)
	}
	if len(saltedPassword) != h().Size() {
		return nil, fmt.Errorf("a %s salted password is %d bytes, got %d", mechanism, h().Size(), len(saltedPassword))
	}
	clientKey := hmacSum(h, saltedPassword, "Client Key")
	stored := h()
	stored.Write(clientKey)
	return &ScramCredential{
		Salt:       slices.Clone(salt),
		Iterations: iterations,
		StoredKey:  stored.Sum(nil),
		ServerKey:  hmacSum(h, saltedPassword, "Server Key"),
	}, nil
}

// VerifyPassword reports whether password matches the credential, in
// constant time with respect to the keys. It costs the credential's
// iterations in HMACs (PLAIN logins pay it on every connection).
func (c *ScramCredential) VerifyPassword(mechanism string, password []byte) bool {
	got, err := NewScramCredential(mechanism, password, c.Salt, c.Iterations)
	if err != nil {
		return false
	}
	return hmac.Equal(got.StoredKey, c.StoredKey)
}

func hmacSum(h func() hash.Hash, key []byte, msg string) []byte {
	m := hmac.New(h, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// check reports what is wrong with a credential for mechanism, or "".
func (c *ScramCredential) check(mechanism string) string {
	h, ok := ScramHash(mechanism)
	switch {
	case !ok:
		return fmt.Sprintf("unknown SCRAM mechanism %q (supported: %s, %s)", mechanism, ScramSHA256, ScramSHA512)
	case c == nil:
		return fmt.Sprintf("no %s credential given", mechanism)
	case c.Iterations < MinScramIterations || c.Iterations > MaxScramIterations:
		return fmt.Sprintf("%d iterations is outside %d..%d", c.Iterations, MinScramIterations, MaxScramIterations)
	case len(c.Salt) == 0 || len(c.Salt) > maxSaltLen:
		return fmt.Sprintf("a salt must be 1 to %d bytes, got %d", maxSaltLen, len(c.Salt))
	case len(c.StoredKey) != h().Size() || len(c.ServerKey) != h().Size():
		return fmt.Sprintf("%s keys must be %d bytes", mechanism, h().Size())
	}
	return ""
}

// ScramCredential returns user's credential for mechanism, or nil.
func (s *State) ScramCredential(user, mechanism string) *ScramCredential {
	if u := s.Users[user]; u != nil {
		return u.Scram[mechanism]
	}
	return nil
}

// UserNames returns the names of the users with credentials, sorted.
func (s *State) UserNames() []string {
	return slices.Sorted(maps.Keys(s.Users))
}

func (s *State) alterCredentials(c *AlterCredentials) Result {
	if err := ValidateUserName(c.User); err != nil {
		return Result{Code: ErrInvalidCredential, Message: err.Error()}
	}
	if len(c.Upsert) == 0 && len(c.Delete) == 0 {
		return Result{Code: ErrInvalidCommand, Message: fmt.Sprintf("nothing to change for user %q", c.User)}
	}
	cur := s.Users[c.User]
	for mech, cred := range c.Upsert {
		if msg := cred.check(mech); msg != "" {
			return Result{Code: ErrInvalidCredential, Message: fmt.Sprintf("user %q: %s", c.User, msg)}
		}
	}
	for _, mech := range c.Delete {
		if _, ok := ScramHash(mech); !ok {
			return Result{Code: ErrInvalidCredential, Message: fmt.Sprintf("user %q: unknown SCRAM mechanism %q", c.User, mech)}
		}
		if _, up := c.Upsert[mech]; up {
			return Result{Code: ErrInvalidCredential, Message: fmt.Sprintf("user %q: %s is both set and deleted", c.User, mech)}
		}
		if cur == nil || cur.Scram[mech] == nil {
			return Result{Code: ErrUnknownCredential, Message: fmt.Sprintf("user %q has no %s credential", c.User, mech)}
		}
	}
	next := &User{Name: c.User, Scram: map[string]*ScramCredential{}}
	if cur != nil {
		maps.Copy(next.Scram, cur.Scram)
	}
	for mech, cred := range c.Upsert {
		cc := *cred
		next.Scram[mech] = &cc
	}
	for _, mech := range c.Delete {
		delete(next.Scram, mech)
	}
	if len(next.Scram) == 0 {
		delete(s.Users, c.User)
		return Result{Code: OK}
	}
	if s.Users == nil {
		s.Users = map[string]*User{}
	}
	s.Users[c.User] = next
	return Result{Code: OK}
}
