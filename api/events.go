package api

import (
	"errors"
	"net/http"

	"github.com/julienschmidt/httprouter"

	"github.com/apiwarden/apiwarden/metrics"
)

// maxEventsBody caps POST /v1/events: 10,000 records of a few hundred
// bytes each fit easily.
const maxEventsBody = 32 << 20

// EventSink takes ingested records. metrics.Recorder is one.
type EventSink interface {
	RecordBatch(recs []metrics.Record) int
}

var _ EventSink = (*metrics.Recorder)(nil)

// eventsResponse is the answer to POST /v1/events.
type eventsResponse struct {
	Accepted int                  `json:"accepted"`
	Rejected int                  `json:"rejected"`
	Dropped  int                  `json:"dropped"` // valid, but the write buffer was full: send them again
	Errors   []metrics.EventError `json:"errors"`
}

// ingestEvents takes request records from apps that report their own
// traffic: a JSON array or NDJSON, up to 10,000 records. Bad records are
// listed with their line and the good ones are kept.
func (s *Server) ingestEvents(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	if e := s.gate.checkServiceToken(r); e != nil {
		return e
	}
	if s.events == nil {
		return errorf(CodeUnavailable, "request recording is not enabled on this server")
	}
	body := http.MaxBytesReader(w, r.Body, maxEventsBody)
	batch, err := metrics.ParseEvents(body, r.Header.Get("Content-Type"), s.now())
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return errorf(CodePayloadTooLarge, "request body is larger than %d bytes; send at most %d records a batch", maxEventsBody, metrics.MaxEventsPerBatch)
	case errors.Is(err, metrics.ErrTooManyEvents):
		return errorf(CodePayloadTooLarge, "a batch holds at most %d records; split it", metrics.MaxEventsPerBatch)
	case errors.Is(err, metrics.ErrMalformedEvents):
		return errorf(CodeInvalidJSON, "%s", trimPrefix(err.Error(), "metrics: "))
	case err != nil:
		return errorf(CodeInvalidRequest, "reading the body: %v", err)
	}
	taken := s.events.RecordBatch(batch.Records)
	resp := eventsResponse{Accepted: taken, Rejected: len(batch.Errors), Dropped: len(batch.Records) - taken, Errors: batch.Errors}
	if resp.Errors == nil {
		resp.Errors = []metrics.EventError{}
	}
	writeJSON(w, http.StatusAccepted, resp)
	return nil
}
