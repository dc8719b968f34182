package components

import "slices"

// PermissionDiff is what changed in a user's effective permissions between
// what a page showed and what the server now holds.
type PermissionDiff struct {
	Added   []string
	Removed []string
}

// Empty reports whether nothing changed.
func (d PermissionDiff) Empty() bool { return len(d.Added) == 0 && len(d.Removed) == 0 }

// Removes reports whether key is among the removed keys.
func (d PermissionDiff) Removes(key string) bool { return slices.Contains(d.Removed, key) }

// Summary says what changed in words, like "Export reports was removed
// from your access." or "Export reports and Delete reports were removed
// from your access. Read reports was added." ("" when nothing changed).
func (d PermissionDiff) Summary() string {
	var parts []string
	if len(d.Removed) > 0 {
		parts = append(parts, JoinWords(readable(d.Removed))+" "+wasWere(len(d.Removed))+" removed from your access.")
	}
	if len(d.Added) > 0 {
		verb := " added to your access."
		if len(d.Removed) > 0 {
			verb = " added."
		}
		parts = append(parts, JoinWords(readable(d.Added))+" "+wasWere(len(d.Added))+verb)
	}
	if len(parts) == 2 {
		return parts[0] + " " + parts[1]
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return ""
}
