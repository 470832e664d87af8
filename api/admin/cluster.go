package admin

import (
	"context"
	"net/http"

	"github.com/julienschmidt/httprouter"

	"github.com/apiwarden/apiwarden/api/httpapi"
	"github.com/apiwarden/apiwarden/cluster"
)

// ClusterView lists the instances of a cluster and who holds each duty;
// *cluster.Cluster is one.
type ClusterView interface {
	Instances(ctx context.Context) ([]cluster.Instance, error)
	Leaders(ctx context.Context) ([]cluster.LeaderInfo, error)
}

var _ ClusterView = (*cluster.Cluster)(nil)

// clusterAnswer is the body of GET /admin/v1/cluster.
type clusterAnswer struct {
	// Cluster says whether cluster mode is on; without it the instance
	// runs alone and Instances is empty.
	Cluster   bool               `json:"cluster"`
	Instances []cluster.Instance `json:"instances"`
	// Leaders are the duties one instance performs for all (alert
	// evaluation) and who holds each now; a duty nobody holds is absent.
	Leaders []cluster.LeaderInfo `json:"leaders"`
}

// listInstances answers with every instance of the cluster and its last
// heartbeat; a single instance answers cluster: false.
func (s *Server) listInstances(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	if s.cluster == nil {
		httpapi.WriteJSON(w, http.StatusOK, clusterAnswer{Instances: []cluster.Instance{}, Leaders: []cluster.LeaderInfo{}})
		return nil
	}
	in, err := s.cluster.Instances(r.Context())
	if err != nil {
		return err
	}
	leaders, err := s.cluster.Leaders(r.Context())
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, clusterAnswer{Cluster: true, Instances: in, Leaders: leaders})
	return nil
}

var _ SessionStore = (*cluster.Cluster)(nil)
