package e2e

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"permsync/app/apptest"
	"permsync/devkinde"
)

// chromiumPath is Debian's chromium; CHROMIUM overrides it.
func chromiumPath() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// The browser window's size, and the phone size pages are also checked at
// (an iPhone 14's viewport in CSS pixels).
const (
	desktopWidth, desktopHeight = 1360, 900
	phoneWidth, phoneHeight     = 390, 844
)

// phoneViewport makes the tab a phone: a portrait touch screen
// phoneWidth×phoneHeight that honours <meta name="viewport">.
func phoneViewport() chromedp.Action[chromedp.Void] {
	return chromedp.EmulateViewport(phoneWidth, phoneHeight, chromedp.EmulateMobile, chromedp.EmulateTouch,
		chromedp.EmulatePortrait)
}

// desktopViewport gives a tab the browser window's size back (chromedp's
// EmulateReset leaves the last override's width in place).
func desktopViewport() chromedp.Action[chromedp.Void] {
	return chromedp.EmulateViewport(desktopWidth, desktopHeight)
}

// newBrowser starts a headless chromium for the test and returns a context
// for its first tab. It skips the test when chromium is missing, unless
// CI=true, where a missing browser is a failure.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath()
	if _, err := exec.LookPath(path); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium not found at %s (CI=true, so browser tests must run): %v", path, err)
		}
		t.Skipf("skipping browser test: chromium not found at %s (install Debian's chromium, or set CHROMIUM)", path)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-features", "Translate,OptimizationHints,MediaRouter"),
		chromedp.WindowSize(desktopWidth, desktopHeight),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // chromium refuses to run as root with its sandbox
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// Start the browser with no deadline; each step gets its own below.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// newProfile returns a tab in a fresh browser context of the same browser:
// its own cookies and storage, like a second person on another machine.
func newProfile(t *testing.T, browser context.Context) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("new browser context: %v", err)
	}
	return ctx
}

// step runs actions with a deadline, failing the test on error.
func step(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	stepWithin(t, ctx, 20*time.Second, what, actions...)
}

// stepWithin is step with its own deadline, for pages that are slow on
// purpose (Kinde unreachable, its calls retried before the page gives up).
func stepWithin(t *testing.T, ctx context.Context, d time.Duration, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression and decodes its value.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(sctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor polls a JavaScript condition until it is truthy.
func waitFor(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := chromedp.Run(sctx, chromedp.Poll[bool](expr)); err != nil {
		t.Fatalf("waiting for %s (%s): %v", what, expr, err)
	}
}

// reloadUntil opens url, waiting for the ready selector, until expr holds
// on the page, for pages that do not update themselves. It fails the test
// after 20 seconds.
func reloadUntil(t *testing.T, ctx context.Context, what, url, ready, expr string) {
	t.Helper()
	reloadUntilWithin(t, ctx, 20*time.Second, what, url, ready, expr)
}

// reloadUntilWithin is reloadUntil with its own deadline.
func reloadUntilWithin(t *testing.T, ctx context.Context, d time.Duration, what, url, ready, expr string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		stepWithin(t, ctx, d, "open "+url, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(ready)))
		if eval[bool](t, ctx, expr) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not on %s after %s (%s)", what, url, d, expr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// signIn signs in through devkinde's sign-in page and waits for the
// dashboard.
func signIn(t *testing.T, ctx context.Context, env *apptest.Env, email string) {
	t.Helper()
	step(t, ctx, "open sign-in",
		chromedp.Navigate(env.URL+"/login"),
		chromedp.WaitVisible(chromedp.CSS(`input[name="email"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="email"]`), email),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), devkinde.DemoPassword),
		chromedp.Click(chromedp.CSS(`form button[type="submit"], form input[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="session-panel"]`)),
	)
}

// capture saves a full-page PNG of the tab.
func capture(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	// Let app.js localise times and start the countdowns first.
	waitFor(t, ctx, "app.js", `document.readyState === "complete"`)
	// and let entrance animations finish.
	step(t, ctx, "settle", chromedp.Sleep(700*time.Millisecond))
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", path, err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("saved %s", path)
}
