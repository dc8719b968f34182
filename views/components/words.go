package components

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Words for people: the pages show end users what a permission lets them
// do, not its key.

// PermissionName is a permission key read as words: "export:reports" is
// "Export reports", "reports.read_all" is "Reports read all". Separators
// (: . _ - /) become spaces and the first letter is upper case. A key with
// no letters or digits is returned as it is.
func PermissionName(key string) string {
	words := strings.FieldsFunc(key, func(r rune) bool {
		return r == ':' || r == '.' || r == '_' || r == '-' || r == '/' || unicode.IsSpace(r)
	})
	if len(words) == 0 {
		return key
	}
	s := strings.Join(words, " ")
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[n:]
}

// JoinWords joins names as a sentence does: "A", "A and B", "A, B and C".
func JoinWords(names []string) string {
	switch len(names) {
	case 0:
		return ""
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// Plural reads like "1 user" or "3 users".
func Plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// readable names each key.
func readable(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = PermissionName(k)
	}
	return out
}

// wasWere is "was" for one thing and "were" for several.
func wasWere(n int) string {
	if n == 1 {
		return "was"
	}
	return "were"
}
