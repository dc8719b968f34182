package kinde

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"maps"
	"net/url"
	"strconv"
)

// paginate walks a Kinde list endpoint page by page (page_size, next_token)
// and yields the items found under key. Whether Kinde's last page omits
// next_token is not documented, so the walk also ends on an empty page, and
// it fails (rather than loop) when a page repeats an earlier one, a token
// repeats, or it passes the client's MaxPages. fix, if non-nil, is applied to each
// item before it is yielded. On error it yields the zero T with the error once
// and stops. Pages are fetched lazily: breaking out of the loop stops the
// requests.
func paginate[T any](ctx context.Context, c *Client, path string, query url.Values, key string, fix func(*T)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		fail := func(err error) { yield(zero, fmt.Errorf("kinde: GET %s%s: %w", apiPrefix, path, err)) }
		q := maps.Clone(query)
		if q == nil {
			q = url.Values{}
		}
		q.Set("page_size", strconv.Itoa(c.pageSize))
		seen := map[string]bool{}
		seenPages := map[[sha256.Size]byte]bool{}
		for pages := 1; ; pages++ {
			var page map[string]json.RawMessage
			if err := c.do(ctx, get(path, q), &page); err != nil {
				yield(zero, err)
				return
			}
			var items []T
			raw := page[key]
			if len(raw) > 0 && !bytes.Equal(raw, []byte("null")) {
				if err := json.Unmarshal(raw, &items); err != nil {
					fail(fmt.Errorf("decode %q: %w", key, err))
					return
				}
			}
			if len(items) > 0 {
				sum := sha256.Sum256(raw)
				if seenPages[sum] {
					fail(errors.New("a page repeated an earlier one (next_token ignored?); stopping to avoid a loop"))
					return
				}
				seenPages[sum] = true
			}
			for i := range items {
				if fix != nil {
					fix(&items[i])
				}
				if !yield(items[i], nil) {
					return
				}
			}
			next, err := nextToken(page["next_token"])
			if err != nil {
				fail(err)
				return
			}
			if next == "" || len(items) == 0 {
				return // the last page; an empty page ends the walk even with a next_token
			}
			if pages >= c.maxPages {
				fail(fmt.Errorf("more than %d pages; stopping (is the server returning next_token forever?)", c.maxPages))
				return
			}
			if seen[next] {
				fail(errors.New("next_token repeated; stopping to avoid a loop"))
				return
			}
			seen[next] = true
			q.Set("next_token", next)
		}
	}
}

// nextToken reads next_token, which may be absent, null or "" on the last page.
func nextToken(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("decode next_token: %w", err)
	}
	return s, nil
}

// Collect drains seq into a slice, stopping at the first error.
func Collect[T any](seq iter.Seq2[T, error]) ([]T, error) {
	var out []T
	for v, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, v)
	}
	return out, nil
}
