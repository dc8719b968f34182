package devkinde

import (
	"context"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestKindeSDKs runs Kinde's own npm libraries (the TypeScript SDK, the
// Management API library and the webhooks library) against devkinde with
// scripts/kinde-sdk-check.mjs. It needs node and `npm ci` at the repository
// root, so it runs only with PERMSYNC_KINDE_SDKS=1: `make check-kinde-sdks`.
func TestKindeSDKs(t *testing.T) {
	if os.Getenv("PERMSYNC_KINDE_SDKS") == "" {
		t.Skip("set PERMSYNC_KINDE_SDKS=1 (make check-kinde-sdks) to run Kinde's npm libraries against devkinde")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	// Kinde's Management API library insists on https, so devkinde runs
	// behind TLS with a test certificate that node is told to trust.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dk, err := New(Config{PublicURL: "https://" + ln.Addr().String(), WebhookRetryBase: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ts := &httptest.Server{Listener: ln, Config: &http.Server{Handler: dk.Handler(), ReadHeaderTimeout: 10 * time.Second}}
	ts.StartTLS()
	t.Cleanup(func() { ts.Close(); _ = dk.Close() })
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})
	if err := os.WriteFile(caFile, ca, 0o600); err != nil {
		t.Fatal(err)
	}
	const callback = "http://127.0.0.1:9/callback"
	dk.AllowRedirect(WebClientID, callback, "http://127.0.0.1:9/")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join("scripts", "kinde-sdk-check.mjs"))
	cmd.Dir = root
	cmd.Env = append(os.Environ(),
		"NODE_EXTRA_CA_CERTS="+caFile,
		"DEVKINDE_URL="+dk.URL(), "DEVKINDE_CALLBACK="+callback, "DEVKINDE_PASSWORD="+DemoPassword,
		"DEVKINDE_WEB_ID="+WebClientID, "DEVKINDE_WEB_SECRET="+WebClientSecret,
		"KINDE_MANAGEMENT_CLIENT_ID="+M2MClientID, "KINDE_MANAGEMENT_CLIENT_SECRET="+M2MClientSecret)
	out, err := cmd.CombinedOutput()
	t.Logf("kinde-sdk-check:\n%s", out)
	if err != nil {
		t.Fatalf("Kinde's libraries disagree with devkinde: %v", err)
	}
}
