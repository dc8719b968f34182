package kinde

import "testing"

func TestNormalizeUserID(t *testing.T) {
	tests := []struct{ in, want string }{
		{"kp:abc", "kp_abc"},
		{"kp_abc", "kp_abc"},
		{" kp:3b1b9e1c1a5a46bfae4e46c969065381 ", "kp_3b1b9e1c1a5a46bfae4e46c969065381"},
		{"", ""},
		{"kp:", "kp_"},
		{"xkp:abc", "xkp:abc"},
		{"org_acme", "org_acme"},
	}
	for _, test := range tests {
		if got := NormalizeUserID(test.in); got != test.want {
			t.Errorf("NormalizeUserID(%q) = %q, want %q", test.in, got, test.want)
		}
	}
}
