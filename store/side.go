package store

import "slices"

// JoinSide returns a side conversation's recipients and hidden recipients
// after w joins them (SideWrite), for every engine: each address once; one
// that joins the visible recipients (a Bcc recipient who answered with Reply
// All, DESIGN.md §14) leaves the hidden ones.
func JoinSide(recipients, hidden []string, w SideWrite) (r, h []string) {
	r, h = slices.Clone(recipients), slices.Clone(hidden)
	for _, a := range w.Recipients {
		if !slices.Contains(r, a) {
			r = append(r, a)
		}
	}
	for _, a := range w.Hidden {
		if !slices.Contains(h, a) && !slices.Contains(r, a) {
			h = append(h, a)
		}
	}
	h = slices.DeleteFunc(h, func(a string) bool { return slices.Contains(r, a) })
	return r, h
}
