package config

import "time"

// Notifications is the [notifications] table: how followers are told of
// the updates of the conversations they follow (DESIGN.md §7).
type Notifications struct {
	// FirstAfter is first_after: the first notification goes out this long
	// after the first unread update. Default 5m.
	FirstAfter time.Duration
	// Interval is interval: while the follower has not read what they were
	// told, the next notification waits at least this long. Default 4h.
	Interval time.Duration
	// MaxPerDay is max_per_day: notifications to one follower about one
	// conversation in any 24 hours; 0 sends none. Default 3.
	MaxPerDay int
}

type fileNotifications struct {
	FirstAfter *string `toml:"first_after"`
	Interval   *string `toml:"interval"`
	MaxPerDay  *int64  `toml:"max_per_day"`
}

const (
	defaultNoticeFirstAfter = 5 * time.Minute
	defaultNoticeInterval   = 4 * time.Hour
	defaultNoticeMaxPerDay  = 3
	maxNoticeDelay          = 7 * 24 * time.Hour
	maxNoticesPerDay        = 96
)

// notifications validates [notifications] and applies its defaults.
func (v *validator) notifications(n *Notifications, fn *fileNotifications) {
	duration := func(key string, p *string, def time.Duration) time.Duration {
		return v.duration("notifications."+key, p, def, maxNoticeDelay, "7d", `"5m" or "4h"`)
	}
	n.FirstAfter = duration("first_after", fn.FirstAfter, defaultNoticeFirstAfter)
	n.Interval = duration("interval", fn.Interval, defaultNoticeInterval)
	n.MaxPerDay = defaultNoticeMaxPerDay
	if p := fn.MaxPerDay; p != nil {
		if *p < 0 || *p > maxNoticesPerDay {
			v.errorf("notifications.max_per_day", "notifications.max_per_day is %d, but it must be from 0 (no notifications) to %d", *p, maxNoticesPerDay)
		} else {
			n.MaxPerDay = int(*p)
		}
	}
}
