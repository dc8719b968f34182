package components

import "strings"

// PermissionDiff is what changed in a user's effective permissions between
// what a page showed and what the server now holds.
type PermissionDiff struct {
	Added   []string
	Removed []string
}

// Empty reports whether nothing changed.
func (d PermissionDiff) Empty() bool { return len(d.Added) == 0 && len(d.Removed) == 0 }

// Summary reads like "−export:reports, +delete:reports".
func (d PermissionDiff) Summary() string {
	parts := make([]string, 0, len(d.Added)+len(d.Removed))
	for _, k := range d.Removed {
		parts = append(parts, "−"+k)
	}
	for _, k := range d.Added {
		parts = append(parts, "+"+k)
	}
	return strings.Join(parts, ", ")
}
