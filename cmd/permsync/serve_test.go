package main

import "testing"

func TestDevSiteURL(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:8080":  "http://localhost:8080",
		"127.0.0.2:8080":  "http://localhost:8080",
		"[::1]:8080":      "http://localhost:8080",
		"localhost:8080":  "http://localhost:8080",
		"0.0.0.0:8080":    "http://localhost:8080",
		"[::]:8080":       "http://localhost:8080",
		":8080":           "http://localhost:8080",
		"192.0.2.10:8080": "http://192.0.2.10:8080",
		"app.test:9000":   "http://app.test:9000",
	} {
		if got := devSiteURL(addr); got != want {
			t.Errorf("devSiteURL(%q) = %q, want %q", addr, got, want)
		}
	}
}
