package handlers

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"permsync/static"
)

// assetVersion hashes every embedded static file; pages link assets with
// ?v=<version>, so a new build busts caches and an old one can cache forever.
func assetVersion() (string, error) {
	h := sha256.New()
	err := fs.WalkDir(static.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(static.FS, path)
		if err != nil {
			return err
		}
		h.Write([]byte(path))
		h.Write(b)
		return nil
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}

// staticHandler serves /static/* from the embedded files: a year and
// immutable when the request carries the current version, five minutes
// otherwise.
func staticHandler(version string) echo.HandlerFunc {
	files := http.StripPrefix("/static/", http.FileServer(http.FS(static.FS)))
	return func(c echo.Context) error {
		r := c.Request()
		if strings.HasSuffix(r.URL.Path, "/") {
			return echo.ErrNotFound // no directory listings
		}
		if r.URL.Query().Get("v") == version {
			c.Response().Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			c.Response().Header().Set("Cache-Control", "public, max-age=300")
		}
		files.ServeHTTP(c.Response(), r)
		return nil
	}
}
