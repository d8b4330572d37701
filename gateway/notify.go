package gateway

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/supportgate/supportgate/policy"
	"github.com/supportgate/supportgate/store"
)

// Follower notifications (DESIGN.md §7). The store marks a follower's
// notice pending when an update arrives; this loop looks at the pending
// ones, and when policy.NoticeDue says so, queues one notification mail
// telling of every update the follower has not read, in the same
// transaction that records how far they were told. A crash before that
// commit leaves the notice pending (it is sent later); after it, the queue
// delivers. Nothing is told twice and nothing is skipped.

// RunNotifier sends follower notifications until ctx ends.
func (s *Server) RunNotifier(ctx context.Context) {
	cfg := s.cfg().Notifications
	if cfg.MaxPerDay <= 0 {
		s.log.Info("follower notifications are off (notifications.max_per_day = 0)")
		return
	}
	// Looked at often enough that a notification leaves within a fifth of
	// first_after of being due, and no more often than needed.
	every := min(max(cfg.FirstAfter/5, 100*time.Millisecond), 30*time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	log := s.log.With("service", "notify")
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.notifyDue(ctx, log, time.Now())
		}
	}
}

// notifyDue handles every pending notice whose first update is at least
// first_after old.
func (s *Server) notifyDue(ctx context.Context, log *slog.Logger, now time.Time) {
	notices, err := s.store.PendingNotices(ctx)
	if err != nil {
		log.Error("reading pending notifications failed", "err", err)
		return
	}
	for _, n := range notices {
		if ctx.Err() != nil || n.PendingSince.Add(s.cfg().Notifications.FirstAfter).After(now) {
			return // oldest first: the rest are not due either
		}
		if err := s.notifyOne(ctx, log, n, now); err != nil && !errors.Is(err, store.ErrNotFound) {
			log.Error("notifying a follower failed; it is tried again", "conversation", n.Conversation, "to", n.Follower, "err", err)
		}
	}
}

// notifyOne sends n's notification if it is due, or settles it when an
// agent has read everything already.
func (s *Server) notifyOne(ctx context.Context, log *slog.Logger, n store.Notice, now time.Time) error {
	updates, lastWrote, err := s.store.NoticeUpdates(ctx, n.Conversation, n.Follower, n.Since)
	if err != nil {
		return err
	}
	// Read everything they were told: an agent has \Seen on it; anyone
	// else wrote into the conversation after it (answering, presumably,
	// what they read). Message numbers, not clocks, say what came after.
	_, isAgent := s.cfg().Agent(n.Follower)
	readAll := isAgent || !n.LastSent.IsZero() && lastWrote > n.NotifiedThrough
	var news []store.NoticeUpdate
	var through int64
	for _, u := range updates {
		if u.ID <= n.NotifiedThrough {
			readAll = readAll && (!isAgent || u.Seen)
			continue
		}
		through = u.ID
		if !isAgent || !u.Seen {
			news = append(news, u)
		}
	}
	if _, isInbox := policy.InboxOf(s.cfg(), n.Follower); isInbox {
		// A support address as a follower (#follow support@...): its
		// notifications would come back in as mail. Nobody to tell.
		news = nil
	}
	if len(news) == 0 {
		// An agent read it all before it was due: nothing to tell.
		if through == 0 {
			through = n.NotifiedThrough
		}
		return s.store.SettleNotice(ctx, n.Conversation, n.Follower, through)
	}
	due, on := policy.NoticeDue(s.cfg().Notifications, policy.NoticeState{
		PendingSince: n.PendingSince, LastSent: n.LastSent, SentTimes: n.SentTimes, ReadAll: readAll})
	if !on || due.After(now) {
		return nil
	}
	conv, err := s.store.Conversation(ctx, n.Conversation)
	if err != nil {
		return err
	}
	inbox, ok := s.cfg().Inbox(conv.Inbox)
	if !ok || conv.Status == store.StatusSpam {
		// Spam is news to nobody; a conversation whose inbox left the
		// configuration has nobody to send as.
		return s.store.SettleNotice(ctx, n.Conversation, n.Follower, through)
	}
	items := make([]policy.NoticeItem, 0, len(news))
	for i, u := range news {
		item := policy.NoticeItem{Kind: u.Kind, Sender: u.Sender, At: u.Received}
		if i >= len(news)-policy.MaxNoticeItems { // only the newest are shown
			raw, err := s.store.MessageRaw(ctx, u.ID)
			if err != nil {
				return err
			}
			item.Text, _ = policy.MessageText(raw)
		}
		items = append(items, item)
	}
	newest := news[len(news)-1]
	msgNum, err := s.store.NextMessageNumber(ctx)
	if err != nil {
		return err
	}
	msgID := s.keys.MessageID(conv.ID, msgNum, s.cfg().Server.Hostname)
	out := policy.Notification{
		InboxName:    inbox.Name,
		InboxAddress: inbox.Address,
		ReplyTo:      policy.ReplyAddress(inbox.Address, s.keys.ReplyToken(conv.ID)),
		To:           n.Follower,
		MessageID:    msgID,
		Conversation: conv.ID,
		Subject:      conv.Subject,
		SubjectTag:   subjectTag(inbox, conv.ID),
		Status:       conv.Status,
		Assignee:     conv.Assignee,
		Items:        items,
		InReplyTo:    newest.MessageIDHeader,
		Now:          now,
	}.Message()
	_, domain, _ := strings.Cut(inbox.Address, "@")
	if out, err = s.signOutbound(out, domain); err != nil {
		return err
	}
	err = s.store.QueueNotification(ctx, store.Notification{Conversation: conv.ID, Follower: n.Follower, Through: through,
		Outbound: store.Outbound{
			Message:         msgNum,
			Conversation:    conv.ID,
			Kind:            store.KindNotification,
			Agent:           inbox.Address,
			MessageIDHeader: msgID,
			Raw:             out,
			Received:        now,
			MailFrom:        "bounces+" + s.keys.BounceToken(msgNum) + "@" + domain,
			Recipients:      []string{n.Follower},
		}})
	if err != nil {
		return err
	}
	log.Info("follower notified", "conversation", conv.ID, "to", n.Follower, "updates", len(news), "message", msgNum)
	return nil
}

// signOutbound DKIM-signs a message we send (RFC 6376), once, before it is
// queued, so that every retry sends the same bytes; without [dkim] it is
// returned as it is. The key file is looked at each time: a rotated key
// needs no restart.
func (s *Server) signOutbound(raw []byte, domain string) ([]byte, error) {
	if s.cfg().DKIM.Selector == "" {
		return raw, nil
	}
	signer, err := s.dkim.Signer(s.cfg().DKIM.Selector, s.cfg().DKIM.PrivateKeyFile)
	if err != nil {
		return nil, err
	}
	return signer.Sign(raw, domain)
}
