package nodecfg

import (
	"strings"
	"testing"
)

func TestAuthorizationConfig(t *testing.T) {
	c, err := Parse([]byte("authorization:\n  enabled: true\n  super_users: [User:ops, User:ci]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Authorization.Enabled || len(c.Authorization.SuperUsers) != 2 || c.Authorization.SuperUsers[1] != "User:ci" {
		t.Fatalf("got %+v", c.Authorization)
	}
	if c, err := Parse(nil); err != nil || c.Authorization.Enabled {
		t.Fatalf("the default config: %v, authorization %+v; want it off", err, c.Authorization)
	}
	_, err = Parse([]byte("authorization:\n  enabled: true\n  super_users: [ops]\n"))
	if err == nil || !strings.Contains(err.Error(), "authorization.super_users") || !strings.Contains(err.Error(), "User:ops") {
		t.Fatalf("a super user without a type: got %v", err)
	}
}
