// Package metrics holds the series that /metrics serves (DESIGN.md §16) in
// a registry of its own: no package-level state, so that every server (and
// every test) has its own counts. The packages that count get a *Metrics
// (gateway) or a plain function (store's commit observer); the queue and
// the store are read at scrape time, so their numbers are those of the
// store at that moment, also when the CLI changed it from another process.
//
// A nil *Metrics counts nothing: every method may be called on it.
//
// Imports: store (its Counts part) and queue (delivery counts); the
// daemon's wiring gives it the store (cmd/supportgate).
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/supportgate/supportgate/queue"
	"github.com/supportgate/supportgate/store"
)

// The values of the result label of supportgate_smtp_messages_total.
const (
	Accepted = "accepted" // answered 250: the message is in the store (or, on submission, recorded and queued)
	Refused  = "refused"  // answered 5xx: the sender must not retry
	Deferred = "deferred" // answered 4xx: the sender retries later
)

// The services of supportgate_smtp_messages_total and
// supportgate_auth_failures_total.
const (
	MX         = "mx"
	Submission = "submission"
	IMAP       = "imap"
)

// Store is what the scrape reads from the store: the queue by state and the
// conversations by status. sqlite.Store implements it.
type Store = store.Counts

// Options are what New needs; every field may be left out.
type Options struct {
	// Store is read at each scrape for supportgate_queue_recipients and
	// supportgate_conversations; nil: those series are not served.
	Store Store
	// Queue gives the delivery outcomes counted by the outbound worker
	// since the start (supportgate_deliveries_total); nil: not served.
	Queue queue.Metrics
	// DataDir is server.data_dir, whose file system's free space is
	// served (supportgate_data_dir_available_bytes); "": not served.
	DataDir string
	// Log receives what a scrape could not read; nil: slog.Default().
	Log *slog.Logger
}

// Metrics is the registry of one server and its series.
type Metrics struct {
	reg  *prometheus.Registry
	log  *slog.Logger
	smtp *prometheus.CounterVec
	auth *prometheus.CounterVec
	imap prometheus.Gauge
	// commit is supportgate_store_commit_seconds.
	commit prometheus.Histogram
}

// scrapeTimeout bounds the store reads of one scrape.
const scrapeTimeout = 5 * time.Second

// New returns the metrics of one server, registered in a new registry with
// the Go and process collectors.
func New(o Options) *Metrics {
	log := o.Log
	if log == nil {
		log = slog.Default()
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		log: log,
		smtp: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "supportgate_smtp_messages_total",
			Help: "SMTP transactions (messages) by service and outcome: accepted (250), refused (5xx at MAIL, at every RCPT, or at DATA) or deferred (4xx: the sender retries).",
		}, []string{"service", "result"}),
		auth: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "supportgate_auth_failures_total",
			Help: "Logins refused for a wrong address or password, by service (submission, imap).",
		}, []string{"service"}),
		imap: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "supportgate_imap_sessions",
			Help: "IMAP connections open now, logged in or not.",
		}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "supportgate_store_commit_seconds",
			Help: "Duration of one group commit of the store: from BEGIN to the end of COMMIT (its fsync included), for a batch of writes.",
			// From a fast SSD's fsync (well under 1 ms) to a disk in trouble.
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
	}
	// Every label value exists from the start, at 0, so that rate() and
	// alerts see the series before the first event.
	for _, svc := range []string{MX, Submission} {
		for _, res := range []string{Accepted, Refused, Deferred} {
			m.smtp.WithLabelValues(svc, res)
		}
	}
	for _, svc := range []string{Submission, IMAP} {
		m.auth.WithLabelValues(svc)
	}
	m.reg.MustRegister(m.smtp, m.auth, m.imap, m.commit,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&storeCollector{store: o.Store, queue: o.Queue, dataDir: o.DataDir, log: log})
	return m
}

// Registry returns the registry, for tests and for more collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text format. A series that
// cannot be read is left out and logged; its error text is not served.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      slogPrinter{m.log},
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      m.reg, // promhttp_metric_handler_errors_total
	})
}

// SMTPMessage counts one SMTP transaction of service with its result
// (Accepted, Refused or Deferred).
func (m *Metrics) SMTPMessage(service, result string) {
	if m == nil {
		return
	}
	m.smtp.WithLabelValues(service, result).Inc()
}

// AuthFailure counts one login refused for wrong credentials on service.
func (m *Metrics) AuthFailure(service string) {
	if m == nil {
		return
	}
	m.auth.WithLabelValues(service).Inc()
}

// IMAPSessionOpened counts an IMAP connection in; the function it returns
// counts it out and must be called once, when the connection closes.
func (m *Metrics) IMAPSessionOpened() (closed func()) {
	if m == nil {
		return func() {}
	}
	m.imap.Inc()
	return m.imap.Dec
}

// ObserveCommit records the duration of one group commit; it is the store's
// commit observer (sqlite.Store.ObserveCommits).
func (m *Metrics) ObserveCommit(d time.Duration) {
	if m == nil {
		return
	}
	m.commit.Observe(d.Seconds())
}

// storeCollector reads the queue and the conversations at scrape time.
type storeCollector struct {
	store   Store
	queue   queue.Metrics
	dataDir string
	log     *slog.Logger
}

var (
	queueDesc = prometheus.NewDesc("supportgate_queue_recipients",
		"Recipients of outbound messages by state, as the store holds them now: queued (waiting for an attempt or being attempted), delivered, failed, dropped.",
		[]string{"state"}, nil)
	conversationsDesc = prometheus.NewDesc("supportgate_conversations",
		"Conversations by status, as the store holds them now: open, closed, spam.",
		[]string{"status"}, nil)
	deliveriesDesc = prometheus.NewDesc("supportgate_deliveries_total",
		"Delivery attempts of the outbound queue by outcome since the start: delivered (250, or written to outbound.directory), deferred (to be tried again), failed (5xx, a bounce or give_up_after).",
		[]string{"result"}, nil)
	diskAvailDesc = prometheus.NewDesc("supportgate_data_dir_available_bytes",
		"Bytes available to the daemon on the file system of server.data_dir (the store, the queue, the outbox); at 0 no mail can be accepted.",
		nil, nil)
	diskSizeDesc = prometheus.NewDesc("supportgate_data_dir_size_bytes",
		"Size in bytes of the file system of server.data_dir.", nil, nil)
)

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	if c.store != nil {
		ch <- queueDesc
		ch <- conversationsDesc
	}
	if c.queue != nil {
		ch <- deliveriesDesc
	}
	if c.dataDir != "" {
		ch <- diskAvailDesc
		ch <- diskSizeDesc
	}
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	if c.store != nil {
		if counts, err := c.store.QueueCounts(ctx); err != nil {
			c.log.Error("metrics: reading the queue counts failed; supportgate_queue_recipients is left out of this scrape", "err", err)
		} else {
			for _, st := range []store.RecipientState{store.RecipientQueued, store.RecipientDelivered, store.RecipientFailed, store.RecipientDropped} {
				if _, ok := counts[st]; !ok {
					counts[st] = 0
				}
			}
			for st, n := range counts {
				ch <- prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, float64(n), string(st))
			}
		}
		if counts, err := c.store.ConversationCounts(ctx); err != nil {
			c.log.Error("metrics: counting the conversations failed; supportgate_conversations is left out of this scrape", "err", err)
		} else {
			for _, st := range []store.Status{store.StatusOpen, store.StatusClosed, store.StatusSpam} {
				if _, ok := counts[st]; !ok {
					counts[st] = 0
				}
			}
			for st, n := range counts {
				ch <- prometheus.MustNewConstMetric(conversationsDesc, prometheus.GaugeValue, float64(n), string(st))
			}
		}
	}
	if c.queue != nil {
		if s, err := c.queue.Stats(ctx); err != nil {
			c.log.Error("metrics: reading the delivery counts failed; supportgate_deliveries_total is left out of this scrape", "err", err)
		} else {
			ch <- prometheus.MustNewConstMetric(deliveriesDesc, prometheus.CounterValue, float64(s.Delivered), "delivered")
			ch <- prometheus.MustNewConstMetric(deliveriesDesc, prometheus.CounterValue, float64(s.Deferred), "deferred")
			ch <- prometheus.MustNewConstMetric(deliveriesDesc, prometheus.CounterValue, float64(s.Failed), "failed")
		}
	}
	if c.dataDir != "" {
		if avail, size, err := diskSpace(c.dataDir); err != nil {
			c.log.Error("metrics: reading the free space of the data directory failed", "data_dir", c.dataDir, "err", err)
		} else {
			ch <- prometheus.MustNewConstMetric(diskAvailDesc, prometheus.GaugeValue, float64(avail))
			ch <- prometheus.MustNewConstMetric(diskSizeDesc, prometheus.GaugeValue, float64(size))
		}
	}
}

// slogPrinter is promhttp's error log.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) {
	p.log.Error("metrics: serving a scrape", "err", fmtArgs(v))
}

func fmtArgs(v []any) any {
	if len(v) == 1 {
		return v[0]
	}
	return v
}
