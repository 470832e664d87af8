package admin

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/alerting"
	"github.com/apiwarden/apiwarden/analytics"
	"github.com/apiwarden/apiwarden/api/gateway"
	"github.com/apiwarden/apiwarden/keys"
	"github.com/apiwarden/apiwarden/metrics"
)

// Every JSON field an answer can carry is in its OpenAPI schema: the
// schemas are written by hand, so a field added to a Go type (such as an
// alert's inhibited_by) must show up here or this test fails.
func TestOpenAPISchemasListEveryField(t *testing.T) {
	cases := []struct {
		schema string
		typ    reflect.Type
	}{
		{"Alert", reflect.TypeFor[alerting.Alert]()},
		{"Key", reflect.TypeFor[keys.Key]()},
		{"KeyWithSecret", reflect.TypeFor[keyWithSecret]()},
		{"CheckResponse", reflect.TypeFor[gateway.CheckResponse]()},
		{"Record", reflect.TypeFor[metrics.RecordJSON]()},
		{"Requests", reflect.TypeFor[requestsAnswer]()},
		{"EventsAccepted", reflect.TypeFor[gateway.EventsResponse]()},
		{"Session", reflect.TypeFor[sessionAnswer]()},
		{"Cluster", reflect.TypeFor[clusterAnswer]()},
		{"KeyUsage", reflect.TypeFor[analytics.KeyUsage]()},
		{"Realtime", reflect.TypeFor[analytics.Snapshot]()},
		{"Summary", reflect.TypeFor[analytics.Summary]()},
		{"TimeSeries", reflect.TypeFor[analytics.SeriesResult]()},
		{"Top", reflect.TypeFor[analytics.TopResult]()},
		{"Billing", reflect.TypeFor[analytics.BillingReport]()},
		{"Erasure", reflect.TypeFor[Erasure]()},
	}
	schemas := (&Server{}).OpenAPI()["components"].(map[string]any)["schemas"].(map[string]any)
	for _, tc := range cases {
		s, ok := schemas[tc.schema].(map[string]any)
		if !ok {
			t.Errorf("no schema %s", tc.schema)
			continue
		}
		for _, missing := range missingFields(tc.typ, s, schemas, tc.schema) {
			t.Errorf("schema %s lacks %s", tc.schema, missing)
		}
	}
}

// missingFields lists the JSON fields of typ (recursively, through
// structs, slices and maps) that schema does not describe. A schema
// without properties (a free-form object) accepts anything.
func missingFields(typ reflect.Type, schema, all map[string]any, path string) []string {
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	if ref, ok := schema["$ref"].(string); ok {
		schema, _ = all[strings.TrimPrefix(ref, "#/components/schemas/")].(map[string]any)
	}
	switch typ.Kind() {
	case reflect.Slice, reflect.Array:
		if items, ok := schema["items"].(map[string]any); ok {
			return missingFields(typ.Elem(), items, all, path+"[]")
		}
		return nil
	case reflect.Map:
		if items, ok := schema["additionalProperties"].(map[string]any); ok {
			return missingFields(typ.Elem(), items, all, path+"{}")
		}
		return nil
	case reflect.Struct:
		if typ == reflect.TypeFor[time.Time]() {
			return nil
		}
	default:
		return nil
	}
	props := properties(schema, all)
	if props == nil {
		return nil
	}
	var missing []string
	for i := range typ.NumField() {
		f := typ.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" {
			missing = append(missing, missingFields(f.Type, schema, all, path)...)
			continue
		}
		if name == "" {
			name = f.Name
		}
		sub, ok := props[name].(map[string]any)
		if !ok {
			missing = append(missing, path+"."+name)
			continue
		}
		missing = append(missing, missingFields(f.Type, sub, all, path+"."+name)...)
	}
	return missing
}

// properties are the schema's properties, merged over the parts of an
// allOf; nil for a free-form object.
func properties(schema, all map[string]any) map[string]any {
	if ref, ok := schema["$ref"].(string); ok {
		schema, _ = all[strings.TrimPrefix(ref, "#/components/schemas/")].(map[string]any)
	}
	props, _ := schema["properties"].(map[string]any)
	parts, _ := schema["allOf"].([]any)
	if len(parts) == 0 {
		return props
	}
	merged := map[string]any{}
	for k, v := range props {
		merged[k] = v
	}
	for _, p := range parts {
		if ps, ok := p.(map[string]any); ok {
			for k, v := range properties(ps, all) {
				merged[k] = v
			}
		}
	}
	return merged
}
