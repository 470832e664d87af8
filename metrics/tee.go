package metrics

// LiveView counts records in memory as they arrive; analytics.Realtime (the
// last minutes, for the dashboard and the alert windows) is one.
type LiveView interface {
	Record(rec *Record) bool
}

// Tee hands every request record to a Recorder, which writes it to disk,
// and to a LiveView. It has the Recorder's Record and RecordBatch, so the
// gate and the events endpoint take it in the Recorder's place. It is safe
// for concurrent use when both parts are, as Recorder and
// analytics.Realtime are.
type Tee struct {
	Recorder *Recorder
	Live     LiveView
}

// Record hands rec to the live view, whatever it reports, then queues it
// for disk; it reports what the Recorder reports. Neither part keeps rec.
func (t Tee) Record(rec *Record) bool {
	t.Live.Record(rec)
	return t.Recorder.Record(rec)
}

// RecordBatch queues as many of recs as the Recorder takes, as
// Recorder.RecordBatch, and hands those (and only those) to the live view,
// so the dashboard never counts a record the disk refused. It returns how
// many were taken.
func (t Tee) RecordBatch(recs []Record) int {
	n := t.Recorder.RecordBatch(recs)
	for i := range recs[:n] {
		t.Live.Record(&recs[i])
	}
	return n
}
