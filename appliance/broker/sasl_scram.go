package broker

import (
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"

	"github.com/eddybroker/eddy/raftgroups/meta"
)

// scramConv is the server side of one SCRAM exchange (RFC 5802): two
// client messages, two answers. The cryptography is the standard
// library's HMAC and hashes over the stored credential; this file only
// parses and composes the messages.
//
// Why not a library: the one Go server implementation (xdg-go/scram)
// requires the client-final nonce to equal the server's, as the RFC says,
// but librdkafka (kcat, confluent-kafka-*, node-rdkafka) sends its own
// nonce again in front of it, and Kafka accepts any nonce that ends with
// the server's. So does eddy: the client's proof covers the nonce as sent,
// so the extra prefix is authenticated like the rest.
type scramConv struct {
	hash  func() hash.Hash
	cred  *meta.ScramCredential
	user  string
	authz string
	gs2   string // the client's GS2 header, "n,," or "n,a=...,"
	c1b   string // client-first-message-bare
	s1    string // server-first-message
	nonce string // client nonce + server nonce
}

// errScramProof is a well-formed exchange with a wrong proof: the wrong
// password, or a user that does not exist.
var errScramProof = errors.New("SCRAM proof does not match the credential")

// scramFirst reads client-first and answers server-first. lookup returns
// the user's credential (a decoy for a user that does not exist).
func scramFirst(h func() hash.Hash, msg string, lookup func(user string) *meta.ScramCredential) (*scramConv, string, error) {
	// gs2-header: cbind-flag "," [authzid] ","; then the bare message.
	flag, rest, ok := strings.Cut(msg, ",")
	if !ok {
		return nil, "", errors.New("SCRAM client-first without a GS2 header")
	}
	switch {
	case flag == "n" || flag == "y":
	case strings.HasPrefix(flag, "p="):
		return nil, "", errors.New("SCRAM channel binding is not supported")
	default:
		return nil, "", fmt.Errorf("SCRAM GS2 flag %q is not n, y or p=", flag)
	}
	authzField, bare, ok := strings.Cut(rest, ",")
	if !ok {
		return nil, "", errors.New("SCRAM client-first is truncated")
	}
	c := &scramConv{hash: h, gs2: flag + "," + authzField + ",", c1b: bare}
	if authzField != "" {
		a, ok := strings.CutPrefix(authzField, "a=")
		if !ok {
			return nil, "", errors.New("SCRAM authorization id field is not a=")
		}
		if c.authz, ok = scramName(a); !ok {
			return nil, "", errors.New("SCRAM authorization id is badly encoded")
		}
	}
	fields := strings.Split(bare, ",")
	if len(fields) < 2 || strings.HasPrefix(fields[0], "m=") {
		return nil, "", errors.New("SCRAM client-first lacks n= and r=, or asks for an extension")
	}
	u, ok := strings.CutPrefix(fields[0], "n=")
	if !ok {
		return nil, "", errors.New("SCRAM client-first does not start with n=")
	}
	if c.user, ok = scramName(u); !ok || c.user == "" {
		return nil, "", errors.New("SCRAM user name is empty or badly encoded")
	}
	cnonce, ok := strings.CutPrefix(fields[1], "r=")
	if !ok || cnonce == "" {
		return nil, "", errors.New("SCRAM client nonce is missing")
	}
	for _, ext := range fields[2:] {
		// Kafka's only extension: delegation tokens, which eddy does not have.
		if ext == "tokenauth=true" {
			return nil, "", errors.New("SCRAM delegation tokens are not supported")
		}
	}
	c.cred = lookup(c.user)
	snonce := make([]byte, 24)
	_, _ = rand.Read(snonce) // crypto/rand.Read never fails
	c.nonce = cnonce + base64.RawURLEncoding.EncodeToString(snonce)
	c.s1 = "r=" + c.nonce + ",s=" + base64.StdEncoding.EncodeToString(c.cred.Salt) + ",i=" + strconv.Itoa(int(c.cred.Iterations))
	return c, c.s1, nil
}

// final reads client-final, checks the proof and answers server-final.
func (c *scramConv) final(msg string) (string, error) {
	withoutProof, proofField, ok := cutLast(msg, ",")
	if !ok {
		return "", errors.New("SCRAM client-final is truncated")
	}
	p, ok := strings.CutPrefix(proofField, "p=")
	if !ok {
		return "", errors.New("SCRAM client-final does not end with p=")
	}
	proof, err := base64.StdEncoding.DecodeString(p)
	if err != nil {
		return "", errors.New("SCRAM proof is not base64")
	}
	fields := strings.Split(withoutProof, ",")
	if len(fields) < 2 {
		return "", errors.New("SCRAM client-final lacks c= and r=")
	}
	cb, ok := strings.CutPrefix(fields[0], "c=")
	if !ok {
		return "", errors.New("SCRAM client-final does not start with c=")
	}
	if cbind, err := base64.StdEncoding.DecodeString(cb); err != nil || string(cbind) != c.gs2 {
		return "", errors.New("SCRAM channel binding does not repeat the GS2 header")
	}
	nonce, ok := strings.CutPrefix(fields[1], "r=")
	if !ok || !strings.HasSuffix(nonce, c.nonce) {
		return "", errors.New("SCRAM client-final nonce does not end with the server's")
	}
	authMsg := []byte(c.c1b + "," + c.s1 + "," + withoutProof)
	sig := hmacOf(c.hash, c.cred.StoredKey, authMsg)
	if len(proof) != len(sig) {
		return "", errScramProof
	}
	clientKey := make([]byte, len(sig))
	for i := range sig {
		clientKey[i] = proof[i] ^ sig[i]
	}
	h := c.hash()
	h.Write(clientKey)
	if !hmac.Equal(h.Sum(nil), c.cred.StoredKey) {
		return "", errScramProof
	}
	return "v=" + base64.StdEncoding.EncodeToString(hmacOf(c.hash, c.cred.ServerKey, authMsg)), nil
}

func hmacOf(h func() hash.Hash, key, msg []byte) []byte {
	m := hmac.New(h, key)
	m.Write(msg)
	return m.Sum(nil)
}

// scramName decodes a saslname: "=2C" is ',' and "=3D" is '='; any other
// '=' is an error.
func scramName(s string) (string, bool) {
	if !strings.Contains(s, "=") {
		return s, true
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", false
		}
		i += 2
	}
	return b.String(), true
}

// cutLast is strings.Cut at the last sep.
func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}
