package devkinde

import "slices"

// Small slice helpers shared by the state, the Management API and the logs.

// nonNil returns s, or an empty slice when s is nil, so that it encodes as
// [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// addUnique appends v to *list unless it is there already, and reports
// whether it did.
func addUnique(list *[]string, v string) bool {
	if slices.Contains(*list, v) {
		return false
	}
	*list = append(*list, v)
	return true
}

// without deletes every v from list (in place, as slices.DeleteFunc does).
func without(list []string, v string) []string {
	return slices.DeleteFunc(list, func(x string) bool { return x == v })
}

// keepLast bounds a log to its newest n entries, copying them out of the old
// backing array when it drops any.
func keepLast[T any](log []T, n int) []T {
	if over := len(log) - n; over > 0 {
		return slices.Clone(log[over:])
	}
	return log
}

// mapSlice converts every item with conv. The result is never nil.
func mapSlice[T, U any](items []T, conv func(T) U) []U {
	out := make([]U, 0, len(items))
	for _, it := range items {
		out = append(out, conv(it))
	}
	return out
}
