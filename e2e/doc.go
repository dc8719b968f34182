// Package e2e holds browser tests: chromedp driving Debian's chromium against
// permsync and devkinde started by apptest. Outside CI the tests skip when
// chromium is missing; with CI=true they fail instead.
package e2e
