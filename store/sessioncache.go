package store

import (
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
)

// sessionCache keeps the session rows GetSession read on SQLite, so that a
// signed-in request whose session (and everything else) is unchanged skips
// reading and decoding the row again. It never serves a row the database no
// longer agrees with: every entry carries the commit count (sqliteCommits)
// at the time of its read, and an entry is used only while that count is
// unchanged, i.e. while no write transaction at all has committed since. A
// revoked session, a refresh, a touched last-seen time, an epoch bump or a
// tombstone (any write, by any code in the process, River included) sends
// the next request back to the row.
//
// It exists on SQLite only, where one permsync process owns the database
// and reaches it through a single connection (see Open): every commit runs
// on that connection, and a read cannot run while a commit is under way. If
// the pool is ever given more connections the cache turns itself off.
// Postgres replicas share rows across processes and keep reading the row on
// every request.
type sessionCache struct {
	mu sync.RWMutex
	m  map[string]cachedSession
}

type cachedSession struct {
	row     *Session
	commits int64
}

// maxCachedSessions bounds the cache; when full it starts over.
const maxCachedSessions = 4096

// sqliteCommits counts the write transactions committed on every SQLite
// connection of this process (SQLite's commit hook, which runs before the
// commit becomes visible). It only grows; any commit, in any database,
// invalidates every cache entry.
var (
	sqliteCommits  atomic.Int64
	sqliteHookOnce sync.Once
)

// countSQLiteCommits installs the commit hook on every SQLite connection
// opened from now on. Open calls it before opening the pool.
func countSQLiteCommits() {
	sqliteHookOnce.Do(func() {
		sqlite.RegisterConnectionHook(func(c sqlite.ExecQuerierContext, _ string) error {
			h, ok := c.(sqlite.HookRegisterer)
			if !ok {
				return errors.New("store: SQLite connection without commit hooks")
			}
			h.RegisterCommitHook(func() int32 {
				sqliteCommits.Add(1)
				return 0 // go ahead with the commit
			})
			return nil
		})
	})
}

// cacheUsable reports whether the session cache may be used now, and the
// commit count to check entries against (read before the row, so a commit
// in between makes an entry older than it is, never newer).
func (db *DB) cacheUsable() (int64, bool) {
	if db.sessions == nil || db.sql.Stats().MaxOpenConnections != 1 {
		return 0, false
	}
	return sqliteCommits.Load(), true
}

// get returns a copy of the cached row for id if it was read at commit count
// n and has not expired by now.
func (c *sessionCache) get(id string, n int64, now time.Time) (*Session, bool) {
	c.mu.RLock()
	e, ok := c.m[id]
	c.mu.RUnlock()
	if !ok || e.commits != n || !e.row.ExpiresAt.After(now) {
		return nil, false
	}
	return e.row.clone(), true
}

// put remembers row as read at commit count n.
func (c *sessionCache) put(row *Session, n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxCachedSessions {
		c.m = make(map[string]cachedSession)
	}
	c.m[row.ID] = cachedSession{row: row.clone(), commits: n}
}

// clone copies s deeply enough that callers may change the copy.
func (s *Session) clone() *Session {
	c := *s
	c.Tokens = slices.Clone(s.Tokens)
	c.Permissions = slices.Clone(s.Permissions)
	c.Roles = slices.Clone(s.Roles)
	c.WebValues = slices.Clone(s.WebValues)
	return &c
}
