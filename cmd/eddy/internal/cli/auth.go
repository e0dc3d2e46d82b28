package cli

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/spf13/pflag"

	"github.com/eddybroker/eddy/sdk"
)

// authFlags are how client commands prove who they are to a secured node.
type authFlags struct {
	clientCert, clientKey string
	saslMechanism         string
	saslUser              string
	saslPasswordFile      string
}

func (a *authFlags) register(pf *pflag.FlagSet) {
	pf.StringVar(&a.clientCert, "client-cert", "", "client certificate (PEM) for listeners with auth: mtls; `eddy cert client NAME` makes one")
	pf.StringVar(&a.clientKey, "client-key", "", "key of --client-cert (PEM)")
	pf.StringVar(&a.saslMechanism, "sasl-mechanism", "", "SASL login for listeners with auth: sasl: SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN (default SCRAM-SHA-512 when --sasl-user is set)")
	pf.StringVar(&a.saslUser, "sasl-user", "", "SASL user name (default $EDDY_SASL_USER)")
	pf.StringVar(&a.saslPasswordFile, "sasl-password-file", "", "file holding the SASL password (default $EDDY_SASL_PASSWORD)")
}

// options are the SDK options of the flags.
func (a *authFlags) options() ([]sdk.Option, error) {
	var opts []sdk.Option
	if a.clientCert != "" || a.clientKey != "" {
		if a.clientCert == "" || a.clientKey == "" {
			return nil, fmt.Errorf("--client-cert and --client-key go together")
		}
		opts = append(opts, sdk.WithClientCert(a.clientCert, a.clientKey))
	}
	user := a.saslUser
	if user == "" {
		user = os.Getenv("EDDY_SASL_USER")
	}
	if user == "" {
		if a.saslMechanism != "" || a.saslPasswordFile != "" {
			return nil, fmt.Errorf("--sasl-mechanism and --sasl-password-file need --sasl-user")
		}
		return opts, nil
	}
	var password string
	if a.saslPasswordFile != "" {
		b, err := os.ReadFile(a.saslPasswordFile)
		if err != nil {
			return nil, fmt.Errorf("--sasl-password-file: %w", err)
		}
		password = string(trimNewline(b))
	} else {
		password = os.Getenv("EDDY_SASL_PASSWORD")
	}
	if password == "" {
		return nil, fmt.Errorf("SASL user %s needs a password: --sasl-password-file or $EDDY_SASL_PASSWORD", user)
	}
	mech := a.saslMechanism
	if mech == "" {
		mech = sdk.SASLScramSHA512
	}
	return append(opts, sdk.WithSASL(mech, user, password)), nil
}

// readPassword reads a password from file, else $EDDY_PASSWORD, else the
// first line of stdin (so scripts can pipe it; nothing is prompted).
func readPassword(file string, stdin io.Reader) ([]byte, error) {
	var b []byte
	switch {
	case file != "":
		var err error
		if b, err = os.ReadFile(file); err != nil {
			return nil, fmt.Errorf("--password-file: %w", err)
		}
	case os.Getenv("EDDY_PASSWORD") != "":
		b = []byte(os.Getenv("EDDY_PASSWORD"))
	default:
		var err error
		if b, err = io.ReadAll(io.LimitReader(stdin, 4096)); err != nil {
			return nil, fmt.Errorf("read password from stdin: %w", err)
		}
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[:i+1]
		}
	}
	b = trimNewline(b)
	if len(b) == 0 {
		return nil, fmt.Errorf("no password: give --password-file, $EDDY_PASSWORD, or the password on stdin")
	}
	return b, nil
}

// trimNewline drops one trailing newline (a file written by echo).
func trimNewline(b []byte) []byte {
	return bytes.TrimSuffix(bytes.TrimSuffix(b, []byte("\n")), []byte("\r"))
}
