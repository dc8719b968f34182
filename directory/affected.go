package directory

import "permsync/fanout"

// Reason is the path as a fan-out reason: the role, or a direct grant.
func (p Path) Reason() fanout.Reason {
	if p.Kind == ViaRole {
		return fanout.Reason{Kind: fanout.ReasonRole, RoleKey: p.RoleKey}
	}
	return fanout.Reason{Kind: fanout.ReasonDirect}
}

// Reasons are the paths as fan-out reasons, each once, in the paths' order.
func Reasons(via []Path) []fanout.Reason {
	var rs []fanout.Reason
	for _, p := range via {
		rs = fanout.AddReason(rs, p.Reason())
	}
	return rs
}

// Affected folds holders (one per user and organization, as AllHolders
// returns them) into one affected user each, in the holders' order, with
// every path by which they hold the permission in any organization as a
// reason (each once, in the order met; fanout.SortReasons orders them).
func Affected(hs []Holder) []fanout.AffectedUser {
	var out []fanout.AffectedUser
	idx := map[string]int{}
	for _, h := range hs {
		i, ok := idx[h.UserID]
		if !ok {
			i = len(out)
			idx[h.UserID] = i
			out = append(out, fanout.AffectedUser{UserID: h.UserID, Email: h.Email, Name: h.Name})
		}
		for _, p := range h.Via {
			out[i].Reasons = fanout.AddReason(out[i].Reasons, p.Reason())
		}
	}
	return out
}
