package api_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/alerting"
	"github.com/apiwarden/apiwarden/api"
	"github.com/apiwarden/apiwarden/api/admin"
	"github.com/apiwarden/apiwarden/store/storetest"
)

// steadyErrors is a traffic source with a constant 50% of 5xx.
type steadyErrors struct{}

func (steadyErrors) Window(kind alerting.SubjectKind, _ time.Duration, _ time.Time) ([]alerting.Aggregate, error) {
	if kind != alerting.SubjectGlobal {
		return nil, nil
	}
	return []alerting.Aggregate{{Subject: alerting.Subject{Kind: alerting.SubjectGlobal}, Requests: 100, Errors5xx: 50}}, nil
}

func TestAlertRoutes(t *testing.T) {
	ev, err := alerting.New(alerting.Options{
		Store:   storetest.MustOpen(t),
		Rules:   []alerting.Rule{(alerting.Rule{Name: "errors", Type: alerting.ErrorSpike, Subject: alerting.SubjectGlobal, Window: time.Minute, Threshold: 0.1, Severity: alerting.SeverityHigh}).WithDefaults()},
		Traffic: steadyErrors{},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := ev.EvalAt(context.Background(), time.Now()); err != nil {
		t.Fatal(err)
	}
	srv := api.New(api.Options{Admin: admin.Options{AdminToken: adminToken, Alerts: ev}})
	hs := httptest.NewServer(srv.AdminHandler())
	defer hs.Close()
	f := &fixture{http: hs}

	type alertJSON struct {
		ID              string `json:"id"`
		State           string `json:"state"`
		Severity        string `json:"severity"`
		Acknowledgement *struct {
			By, Note string
		} `json:"acknowledgement"`
	}
	list := decode[struct{ Alerts []alertJSON }](t, f.admin(t, "GET", "/admin/v1/alerts?state=firing", nil))
	if len(list.Alerts) != 1 || list.Alerts[0].State != "firing" || list.Alerts[0].Severity != "high" {
		t.Fatalf("firing alerts %+v", list)
	}
	id := list.Alerts[0].ID
	one := decode[struct {
		Alert   alertJSON
		History []struct{ From, To string }
	}](t, f.admin(t, "GET", "/admin/v1/alerts/"+id, nil))
	if one.Alert.ID != id || len(one.History) == 0 {
		t.Fatalf("alert %+v", one)
	}
	acked := decode[alertJSON](t, f.admin(t, "POST", "/admin/v1/alerts/"+id+"/ack", map[string]string{"note": "looking"}))
	if acked.Acknowledgement == nil || acked.Acknowledgement.Note != "looking" || acked.Acknowledgement.By != "admin" {
		t.Fatalf("acknowledged %+v", acked)
	}
	checkError(t, f.admin(t, "POST", "/admin/v1/alerts/"+id+"/ack", nil), 409, "CONFLICT")
	if l := decode[struct{ Alerts []alertJSON }](t, f.admin(t, "GET", "/admin/v1/alerts?state=acknowledged", nil)); len(l.Alerts) != 1 {
		t.Fatalf("acknowledged list %+v", l)
	}
	resolved := decode[alertJSON](t, f.admin(t, "POST", "/admin/v1/alerts/"+id+"/resolve", map[string]string{"note": "fixed"}))
	if resolved.State != "resolved" {
		t.Fatalf("resolved %+v", resolved)
	}
	rules := decode[struct{ Rules []struct{ Name, Type string } }](t, f.admin(t, "GET", "/admin/v1/alerts/rules", nil))
	if len(rules.Rules) != 1 || rules.Rules[0].Name != "errors" || rules.Rules[0].Type != "error_spike" {
		t.Fatalf("rules %+v", rules)
	}
	checkError(t, f.admin(t, "GET", "/admin/v1/alerts/nope", nil), 404, "RESOURCE_NOT_FOUND")
	checkError(t, f.admin(t, "GET", "/admin/v1/alerts?state=sleeping", nil), 400, "INVALID_PARAMETER")
	checkError(t, f.admin(t, "GET", "/admin/v1/alerts?severity=urgent", nil), 400, "INVALID_PARAMETER")
	checkError(t, f.admin(t, "GET", "/admin/v1/alerts?type=meteor", nil), 400, "INVALID_PARAMETER")
	checkError(t, f.call(t, "GET", "/admin/v1/alerts/rules", "", "", nil), 401, "UNAUTHORIZED")

	none := api.New(api.Options{Admin: admin.Options{AdminToken: adminToken}})
	hs2 := httptest.NewServer(none.AdminHandler())
	defer hs2.Close()
	checkError(t, (&fixture{http: hs2}).admin(t, "GET", "/admin/v1/alerts", nil), 503, "UNAVAILABLE")
}
