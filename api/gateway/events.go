package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/apiwarden/apiwarden/api/httpapi"
	"github.com/apiwarden/apiwarden/keys"
	"github.com/apiwarden/apiwarden/metrics"
)

// maxEventsBody caps POST /v1/events: 10,000 records of a few hundred
// bytes each fit easily.
const maxEventsBody = 32 << 20

// IngestLimits bound what POST /v1/events files; a zero field takes its
// default.
type IngestLimits struct {
	// MaxAge refuses records older than this, so that no caller files
	// traffic into days already reported or billed. Default
	// metrics.DefaultMaxEventAge.
	MaxAge time.Duration
	// MaxFuture refuses records dated further ahead of the server's
	// clock. Default metrics.DefaultMaxEventFuture.
	MaxFuture time.Duration
	// Routes caps the distinct routes of ingested records. Default: a
	// metrics.RouteCap of metrics.DefaultMaxIngestedRoutes.
	Routes RouteAdmitter
}

// RouteAdmitter caps the distinct routes ingested records may file: Admit
// returns the route to file a record under, its own or an overflow value.
type RouteAdmitter interface {
	Admit(route string) string
}

var _ RouteAdmitter = (*metrics.RouteCap)(nil)

// EventSink takes ingested records. metrics.Recorder is one.
type EventSink interface {
	RecordBatch(recs []metrics.Record) int
}

var _ EventSink = (*metrics.Recorder)(nil)

// EventsResponse is the answer to POST /v1/events.
type EventsResponse struct {
	Accepted int                  `json:"accepted"`
	Rejected int                  `json:"rejected"`
	Dropped  int                  `json:"dropped"` // valid, but the write buffer was full: send them again
	Errors   []metrics.EventError `json:"errors"`
}

// ingestEvents takes request records from apps that report their own
// traffic: a JSON array or NDJSON, up to 10,000 records. Bad records are
// listed with their line and the good ones are kept. The body is read as
// a stream, so memory grows with the records, each held to the field caps
// of metrics.ParseEvents, not with the body.
func (s *Gateway) ingestEvents(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	if e := s.gate.checkServiceToken(r); e != nil {
		return e
	}
	if s.events == nil {
		return httpapi.Errorf(httpapi.CodeUnavailable, "request recording is not enabled on this server")
	}
	body := http.MaxBytesReader(w, r.Body, maxEventsBody)
	batch, err := metrics.ParseEventsWith(body, r.Header.Get("Content-Type"), metrics.IngestOptions{
		Now: s.now(), MaxAge: s.ingest.MaxAge, MaxFuture: s.ingest.MaxFuture, Check: s.eventCheck()})
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return httpapi.Errorf(httpapi.CodePayloadTooLarge, "request body is larger than %d bytes; send at most %d records a batch", maxEventsBody, metrics.MaxEventsPerBatch)
	case errors.Is(err, metrics.ErrTooManyEvents):
		return httpapi.Errorf(httpapi.CodePayloadTooLarge, "a batch holds at most %d records; split it", metrics.MaxEventsPerBatch)
	case errors.Is(err, metrics.ErrMalformedEvents):
		return httpapi.Errorf(httpapi.CodeInvalidJSON, "%s", strings.TrimPrefix(err.Error(), "metrics: "))
	case err != nil:
		return httpapi.Errorf(httpapi.CodeInvalidRequest, "reading the body: %v", err)
	}
	taken := s.events.RecordBatch(batch.Records)
	resp := EventsResponse{Accepted: taken, Rejected: len(batch.Errors), Dropped: len(batch.Records) - taken, Errors: batch.Errors}
	if resp.Errors == nil {
		resp.Errors = []metrics.EventError{}
	}
	httpapi.WriteJSON(w, http.StatusAccepted, resp)
	return nil
}

// eventCheck returns the last check of an ingested record: its key and
// owner (eventOwners), then its route against the cap. The cap comes last
// so that only records that are kept take room in it.
func (s *Gateway) eventCheck() func(*metrics.Record) error {
	owners := s.eventOwners()
	return func(rec *metrics.Record) error {
		if owners != nil {
			if err := owners(rec); err != nil {
				return err
			}
		}
		rec.Route = s.ingest.Routes.Admit(rec.Route)
		return nil
	}
}

// eventOwners returns the check that ties ingested records to the key
// store: a record's key_id must be a key of this server, and its owner_id
// and tier are that key's, whatever the record said (a key's tier may have
// changed since, but the store is what analytics and billing group by). A
// record without a key may name neither. Otherwise any caller of
// /v1/events could file traffic under a real customer, or fill the
// never-pruned string dictionary with made-up keys, owners and tiers.
// Lookups are cached for the batch. Without a key store it checks nothing.
func (s *Gateway) eventOwners() func(*metrics.Record) error {
	if s.keys == nil {
		return nil
	}
	type owner struct {
		id, tier string
		err      error
	}
	seen := map[string]owner{}
	return func(rec *metrics.Record) error {
		if rec.KeyID == "" {
			if rec.OwnerID != "" || rec.Tier != "" {
				return errors.New("owner_id and tier come from the key: give key_id, or neither")
			}
			return nil
		}
		o, ok := seen[rec.KeyID]
		if !ok {
			k, err := s.keys.Get(rec.KeyID)
			switch {
			case errors.Is(err, keys.ErrNotFound):
				o.err = fmt.Errorf("key_id %q is not a key of this server", rec.KeyID)
			case err != nil:
				o.err = fmt.Errorf("key_id %q cannot be looked up: %v", rec.KeyID, err)
			default:
				o.id, o.tier = k.OwnerID, k.Tier
			}
			if len(seen) < 1024 {
				seen[rec.KeyID] = o
			}
		}
		if o.err != nil {
			return o.err
		}
		rec.OwnerID, rec.Tier = o.id, o.tier
		return nil
	}
}
