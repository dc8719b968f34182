package devkinde

import (
	"reflect"
	"testing"
)

func TestGenerateSeedIsDeterministic(t *testing.T) {
	o := GenerateOptions{Seed: 9, Organizations: 40, Users: 200}
	a, b := GenerateSeed(o), GenerateSeed(o)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same options gave two different tenants")
	}
	c := GenerateSeed(GenerateOptions{Seed: 10, Organizations: 40, Users: 200})
	if reflect.DeepEqual(a.Users, c.Users) {
		t.Error("another seed gave the same users")
	}
	def := DefaultSeed()
	if got, want := len(a.Organizations), len(def.Organizations)+40; got != want {
		t.Errorf("%d organizations, want %d", got, want)
	}
	if got, want := len(a.Users), len(def.Users)+200; got != want {
		t.Errorf("%d users, want %d", got, want)
	}
	direct, second := 0, 0
	for _, u := range a.Users[len(def.Users):] {
		if u.Password != "" {
			t.Fatalf("generated user %s has a password", u.Email)
		}
		if len(u.Organizations) > 1 {
			second++
		}
		for _, m := range u.Organizations {
			direct += len(m.Permissions)
			if len(m.Roles) != 2 {
				t.Errorf("%s in %s holds roles %v, want analyst or viewer plus a generated role", u.Email, m.Code, m.Roles)
			}
		}
	}
	if direct == 0 || second == 0 {
		t.Errorf("%d direct grants, %d users in a second organization; want some of each", direct, second)
	}
	// The demo accounts still sign in.
	if a.UserIDByEmail("admin@acme.test") != def.UserIDByEmail("admin@acme.test") {
		t.Error("the generated tenant changed the demo admin")
	}
}

func TestParseGenerate(t *testing.T) {
	o, err := ParseGenerate("1000x5000")
	if err != nil || o.Organizations != 1000 || o.Users != 5000 || o.Seed != 1 {
		t.Errorf("1000x5000: %+v, %v", o, err)
	}
	o, err = ParseGenerate("100x500@7")
	if err != nil || o.Organizations != 100 || o.Users != 500 || o.Seed != 7 {
		t.Errorf("100x500@7: %+v, %v", o, err)
	}
	for _, bad := range []string{"", "1000", "x5", "0x10", "10x0", "10x10@", "10x10@-1", "ax5", "10x5x3"} {
		if _, err := ParseGenerate(bad); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
}
