// Package alerting watches apiwarden's traffic and raises alerts.
//
// It has three parts, each usable on its own:
//
//   - Rules (rule.go) say what to watch: a [RuleType], a subject kind
//     (global, key, owner or route), a window, a threshold and the timings
//     For and KeepFiringFor that damp flapping. [DefaultRules] returns one
//     sensible rule of every type.
//   - The [Evaluator] (evaluator.go) reads windowed aggregates, hourly
//     rollups and quota usage through small interfaces declared here
//     ([TrafficSource], [HistorySource], [QuotaSource], [CalendarSource]),
//     never raw request records. Every pass moves each alert through the
//     state machine in state.go and hands the alerts that need a
//     notification to a [Stage]. Alerts and every transition are kept in
//     a [StateStore] (the data file, or PostgreSQL shared by a cluster's
//     instances), so a restart neither loses nor re-announces them;
//     [Leadership] says which instance of a cluster evaluates.
//   - Notification (notify.go, dispatch.go) is a pipeline of one-method
//     stages in the manner of Prometheus Alertmanager: filter by severity,
//     group, retry with backoff, send. A [Dispatcher] gives every receiver
//     its own bounded queue and goroutine, so a slow or failing notifier
//     delays neither evaluation nor the other receivers. Notifiers for a
//     generic webhook (Alertmanager's v4 JSON), Slack and SMTP email are
//     included.
//
// Time is always injected: [Options.Now] for the evaluator, and
// [Evaluator.EvalAt] runs one pass at a given instant so tests step through
// fixed times without sleeping.
package alerting
