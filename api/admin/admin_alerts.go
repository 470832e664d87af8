package admin

import (
	"context"
	"net/http"
	"strings"

	"github.com/julienschmidt/httprouter"

	"github.com/apiwarden/apiwarden/alerting"
	"github.com/apiwarden/apiwarden/api/httpapi"
)

// AlertAdmin is what the alert routes need of the evaluator.
type AlertAdmin interface {
	List(q alerting.Query) ([]alerting.Alert, error)
	Get(id string) (alerting.Alert, error)
	History(id string) ([]alerting.Transition, error)
	Acknowledge(id, by, note string) (alerting.Alert, error)
	Resolve(ctx context.Context, id, by, note string) (alerting.Alert, error)
	Rules() []alerting.Rule
}

var _ AlertAdmin = (*alerting.Evaluator)(nil)

func (s *Server) alertRoutes() []httpapi.Route {
	return []httpapi.Route{
		{Method: "GET", Path: "/admin/v1/alerts", Summary: "list alerts", Access: httpapi.AccessAdmin, Handle: s.listAlerts},
		{Method: "GET", Path: "/admin/v1/alerts/:id", Summary: "an alert and its history", Access: httpapi.AccessAdmin, Handle: s.getAlert},
		// httprouter cannot hold /alerts/rules beside /alerts/:id; the :id
		// route serves it, and this entry keeps it in the route table.
		{Method: "GET", Path: "/admin/v1/alerts/rules", Summary: "the alert rules in force", Access: httpapi.AccessAdminShadowed, Handle: s.getAlert},
		{Method: "POST", Path: "/admin/v1/alerts/:id/ack", Summary: "acknowledge a firing alert", Access: httpapi.AccessAdmin, Handle: s.ackAlert},
		{Method: "POST", Path: "/admin/v1/alerts/:id/resolve", Summary: "resolve an alert by hand", Access: httpapi.AccessAdmin, Handle: s.resolveAlert},
	}
}

func (s *Server) alertsAvailable() error {
	if s.alerts == nil {
		return httpapi.Errorf(httpapi.CodeUnavailable, "alerting is not running on this server")
	}
	return nil
}

func (s *Server) listAlerts(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	if err := s.alertsAvailable(); err != nil {
		return err
	}
	q := r.URL.Query()
	if err := onlyParams(q, "state", "severity", "type", "rule", "subject", "limit"); err != nil {
		return err
	}
	var query alerting.Query
	for _, st := range splitParam(q.Get("state")) {
		if st == "acknowledged" {
			yes := true
			query.Acknowledged = &yes
			query.States = append(query.States, alerting.StateFiring, alerting.StateRecovering)
			continue
		}
		state, ok := alerting.ParseState(st)
		if !ok {
			return httpapi.Errorf(httpapi.CodeInvalidParameter, "state: must be pending, firing, recovering, resolved or acknowledged, got %q", st)
		}
		query.States = append(query.States, state)
	}
	for _, sv := range splitParam(q.Get("severity")) {
		sev, err := alerting.ParseSeverity(sv)
		if err != nil {
			return httpapi.Errorf(httpapi.CodeInvalidParameter, "severity: must be low, medium, high or critical, got %q", sv)
		}
		query.Severities = append(query.Severities, sev)
	}
	for _, ty := range splitParam(q.Get("type")) {
		known := false
		for _, t := range alerting.RuleTypes() {
			known = known || string(t) == ty
		}
		if !known {
			return httpapi.Errorf(httpapi.CodeInvalidParameter, "type: %q is not an alert type", ty)
		}
		query.Types = append(query.Types, alerting.RuleType(ty))
	}
	query.Rule, query.Subject = q.Get("rule"), q.Get("subject")
	limit, err := intParam(q.Get("limit"), "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	query.Limit = limit
	list, err := s.alerts.List(query)
	if err != nil {
		return err
	}
	if list == nil {
		list = []alerting.Alert{}
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"alerts": list})
	return nil
}

func (s *Server) getAlert(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	if err := s.alertsAvailable(); err != nil {
		return err
	}
	id := ps.ByName("id")
	if id == "rules" || strings.HasSuffix(r.URL.Path, "/alerts/rules") {
		httpapi.WriteJSON(w, http.StatusOK, map[string]any{"rules": s.alerts.Rules()})
		return nil
	}
	a, err := s.alerts.Get(id)
	if err != nil {
		return err
	}
	history, err := s.alerts.History(id)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"alert": a, "history": history})
	return nil
}

type alertNote struct {
	Note string `json:"note"`
}

func (s *Server) ackAlert(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	if err := s.alertsAvailable(); err != nil {
		return err
	}
	var body alertNote
	if err := httpapi.DecodeJSON(w, r, &body, true); err != nil {
		return err
	}
	a, err := s.alerts.Acknowledge(ps.ByName("id"), actor(r), body.Note)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, a)
	return nil
}

func (s *Server) resolveAlert(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	if err := s.alertsAvailable(); err != nil {
		return err
	}
	var body alertNote
	if err := httpapi.DecodeJSON(w, r, &body, true); err != nil {
		return err
	}
	a, err := s.alerts.Resolve(r.Context(), ps.ByName("id"), actor(r), body.Note)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, a)
	return nil
}

func splitParam(v string) []string {
	if v == "" {
		return nil
	}
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
