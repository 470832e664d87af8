package admin

import (
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/apiwarden/apiwarden/api/httpapi"
	"github.com/julienschmidt/httprouter"
)

// sizedResponse sets Content-Length when the store announces the size of
// the copy, so a client can tell a complete file from a cut-off one.
type sizedResponse struct{ http.ResponseWriter }

func (s sizedResponse) AnnounceSize(n int64) {
	s.Header().Set("Content-Length", strconv.FormatInt(n, 10))
}

// Backupper writes a consistent snapshot of the data file.
type Backupper interface {
	Backup(w io.Writer) (int64, error)
}

// backup streams a hot, consistent copy of the data file: writers carry
// on while it runs. Restore by stopping apiwarden and putting the file in
// place as <data_dir>/apiwarden.db; keys verify only with the same
// key secret, which is not part of the file.
func (s *Server) backup(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	if s.backupper == nil {
		return httpapi.Errorf(httpapi.CodeUnavailable, "backups are not available on this server")
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="apiwarden-%s.db"`, s.now().UTC().Format("20060102-150405")))
	h.Set("Cache-Control", "no-store")
	n, err := s.backupper.Backup(sizedResponse{w})
	if err != nil {
		if n == 0 {
			return err // nothing sent yet: a proper error body
		}
		// Headers and part of the file are out; break the connection so
		// the client sees a truncated transfer, not a short file.
		s.log.Error("backup failed mid-stream", "request_id", httpapi.RequestIDFrom(r.Context()), "bytes", n, "err", err)
		panic(http.ErrAbortHandler)
	}
	s.log.Info("backup sent", "request_id", httpapi.RequestIDFrom(r.Context()), "bytes", n)
	return nil
}
