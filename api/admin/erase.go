package admin

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/apiwarden/apiwarden/api/httpapi"
	"github.com/apiwarden/apiwarden/keys"
	"github.com/apiwarden/apiwarden/metrics"
)

// eraseWriteTimeout is how long an erase route may take to answer.
const eraseWriteTimeout = 15 * time.Minute

// UsageEraser erases one key's or one owner's usage data wherever this
// instance keeps it: the data file and, in cluster mode, PostgreSQL. It
// fills in the counts of the Erasure it returns.
type UsageEraser interface {
	EraseUsage(ctx context.Context, req metrics.EraseRequest) (Erasure, error)
}

// Erasure is what the erase routes answer: what went, as counts.
type Erasure struct {
	KeyID   string `json:"key_id,omitempty"`
	OwnerID string `json:"owner_id,omitempty"`
	Rollups bool   `json:"rollups"` // rollup cells were asked for too
	metrics.EraseResult
	// ClusterRecords and ClusterCells are the rows deleted from
	// PostgreSQL (cluster mode; 0 otherwise).
	ClusterRecords int64 `json:"cluster_records"`
	ClusterCells   int64 `json:"cluster_cells"`
	// Keys is how many keys got an "erased" audit event; KeysBlanked how
	// many of them had their name and meta cleared (?blank=true).
	Keys        int `json:"keys"`
	KeysBlanked int `json:"keys_blanked"`
}

// eraseKeyData is DELETE /admin/v1/keys/:id/data.
func (s *Server) eraseKeyData(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	id := ps.ByName("id")
	if _, err := s.keys.Get(id); err != nil {
		return err // a typo answers 404 instead of erasing nothing
	}
	return s.erase(w, r, metrics.EraseRequest{KeyID: id}, []string{id})
}

// eraseOwnerData is DELETE /admin/v1/owners/:owner_id/data: the data of
// every key the owner has now, and of every record filed under the owner.
func (s *Server) eraseOwnerData(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	owner := ps.ByName("owner_id")
	var ids []string
	f := keys.Filter{OwnerID: owner, Limit: 1000}
	for {
		list, next, err := s.keys.List(f)
		if err != nil {
			return err
		}
		for _, k := range list {
			ids = append(ids, k.ID)
		}
		if next == "" {
			break
		}
		f.Cursor = next
	}
	return s.erase(w, r, metrics.EraseRequest{OwnerID: owner, KeyIDs: ids}, ids)
}

// erase runs req, then records an "erased" event (and blanks, if asked)
// on each of auditKeys.
func (s *Server) erase(w http.ResponseWriter, r *http.Request, req metrics.EraseRequest, auditKeys []string) error {
	if s.eraser == nil {
		return httpapi.Errorf(httpapi.CodeUnavailable, "erasure is not available on this server")
	}
	q := r.URL.Query()
	if err := onlyParams(q, "rollups", "blank"); err != nil {
		return err
	}
	rollups, err := boolParam(q.Get("rollups"), "rollups")
	if err != nil {
		return err
	}
	blank, err := boolParam(q.Get("blank"), "blank")
	if err != nil {
		return err
	}
	req.Rollups, req.RequestedBy = rollups, actor(r)
	// A busy key's erasure rewrites most raw blocks, which can outlast
	// server.write_timeout on a large file (docs/BENCHMARKS.md).
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(eraseWriteTimeout))
	res, err := s.eraser.EraseUsage(r.Context(), req)
	if err != nil {
		return err
	}
	res.KeyID, res.OwnerID, res.Rollups = req.KeyID, req.OwnerID, rollups
	detail := fmt.Sprintf("raw_records=%d blocks_rewritten=%d blocks_deleted=%d rollup_cells=%d cluster_records=%d cluster_cells=%d",
		res.RawRecords, res.BlocksRewritten, res.BlocksDeleted, res.RollupCells, res.ClusterRecords, res.ClusterCells)
	if req.OwnerID != "" {
		detail = "owner erased: " + detail
	}
	for _, id := range auditKeys {
		if _, err := s.keys.RecordErasure(id, actor(r), detail, blank); err != nil {
			return err
		}
		res.Keys++
		if blank {
			res.KeysBlanked++
		}
	}
	s.log.Info("usage data erased", "request_id", httpapi.RequestIDFrom(r.Context()), "actor", actor(r),
		"key", req.KeyID, "owner", req.OwnerID, "raw_records", res.RawRecords, "rollup_cells", res.RollupCells)
	httpapi.WriteJSON(w, http.StatusOK, res)
	return nil
}

// boolParam parses an optional "true" or "false" query parameter.
func boolParam(v, name string) (bool, error) {
	switch v {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	}
	return false, httpapi.Errorf(httpapi.CodeInvalidParameter, "%s: must be true or false, got %q", name, v)
}
