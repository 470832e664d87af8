package admin

// JSON Schemas of the bodies in docs/API.md, for the OpenAPI description.

func obj(props map[string]any, required ...string) map[string]any {
	o := map[string]any{"type": "object", "properties": props}
	if len(required) > 0 {
		o["required"] = required
	}
	return o
}

func arr(items any) map[string]any { return map[string]any{"type": "array", "items": items} }

var (
	str      = map[string]any{"type": "string"}
	integer  = map[string]any{"type": "integer"}
	number   = map[string]any{"type": "number"}
	boolean  = map[string]any{"type": "boolean"}
	dateTime = map[string]any{"type": "string", "format": "date-time"}
	nullTime = map[string]any{"type": []string{"string", "null"}, "format": "date-time"}
	strList  = arr(str)
	strMap   = map[string]any{"type": "object", "additionalProperties": str}
	anyObj   = map[string]any{"type": "object"}
)

func enum(values ...string) map[string]any { return map[string]any{"type": "string", "enum": values} }

var statsProps = map[string]any{
	"requests": integer, "errors_4xx": integer, "errors_5xx": integer, "error_rate": number, "rate_limited": integer,
	"auth_failures": integer, "unique_keys": integer, "bytes_in": integer, "bytes_out": integer,
	"p50_ms": number, "p90_ms": number, "p95_ms": number, "p99_ms": number, "max_ms": number, "avg_ms": number,
}

var schemas = map[string]any{
	"Error":   obj(map[string]any{"error": obj(map[string]any{"code": str, "message": str, "request_id": str}, "code", "message", "request_id")}, "error"),
	"Health":  obj(map[string]any{"status": str, "version": str}),
	"Ready":   obj(map[string]any{"status": enum("ready", "degraded"), "checks": strMap}),
	"OpenAPI": anyObj,

	"Login":   obj(map[string]any{"token": str}, "token"),
	"Session": obj(map[string]any{"actor": str, "csrf_token": str, "expires_at": dateTime}),

	"Cluster": obj(map[string]any{"cluster": boolean, "instances": arr(obj(map[string]any{
		"id": str, "version": str, "started_at": dateTime, "last_heartbeat": dateTime,
		"mirror_seq": integer, "mirror_lag": integer, "ship_waiting": integer, "ship_oldest": nullTime, "ship_waiting_cells": integer,
		"ship_dropped": integer})),
		"leaders": arr(obj(map[string]any{"name": str, "holder": str, "elected_at": dateTime, "expires_at": dateTime}))}),

	"Key": obj(map[string]any{
		"id": str, "name": str, "owner_id": str, "tier": str, "scopes": strList, "allowed_ips": strList,
		"allowed_origins": strList, "expires_at": nullTime, "created_at": dateTime, "updated_at": dateTime,
		"last_used_at": nullTime, "revoked_at": nullTime, "status": enum("active", "revoked", "expired"),
		"start": str, "meta": strMap, "rotated_at": nullTime, "grace_until": nullTime,
	}),
	"KeyWithSecret": obj(map[string]any{"key": ref("Key"), "secret": map[string]any{"type": "string", "description": "shown once"}}, "key", "secret"),
	"Erasure": obj(map[string]any{"key_id": str, "owner_id": str, "rollups": boolean, "raw_records": integer,
		"blocks_rewritten": integer, "blocks_deleted": integer, "rollup_cells": integer, "scrubbed_pages": integer,
		"cluster_records": integer, "cluster_cells": integer, "keys": integer, "keys_blanked": integer}),
	"KeyList": obj(map[string]any{"keys": arr(ref("Key")), "next_cursor": str}),
	"CreateKey": obj(map[string]any{"name": str, "owner_id": str, "tier": str, "scopes": strList, "allowed_ips": strList,
		"allowed_origins": strList, "expires_at": dateTime, "meta": strMap}),
	"PatchKey": obj(map[string]any{"name": str, "owner_id": str, "tier": str, "scopes": strList, "allowed_ips": strList,
		"allowed_origins": strList, "expires_at": nullTime, "meta": strMap}),
	"Revoke": obj(map[string]any{"reason": str}),
	"Rotate": obj(map[string]any{"grace_period": map[string]any{"type": "string", "description": "Go duration, e.g. 24h or 0s"}}),
	"KeyEvents": obj(map[string]any{"events": arr(obj(map[string]any{"key_id": str, "type": enum("created", "updated", "rotated",
		"revoked", "expired", "ip_denied", "origin_denied", "scope_denied", "erased"), "actor": str, "at": dateTime, "detail": str, "count": integer})),
		"next_cursor": str}),

	"Alert": obj(map[string]any{"id": str, "fingerprint": str, "rule": str, "type": str,
		"subject":  obj(map[string]any{"kind": enum("global", "key", "owner", "route"), "value": str}),
		"severity": enum("low", "medium", "high", "critical"), "state": enum("pending", "firing", "recovering", "resolved"),
		"labels": strMap, "summary": str, "description": str, "value": number, "threshold": number,
		"active_at": dateTime, "fired_at": dateTime, "recovering_since": dateTime, "resolved_at": dateTime,
		"last_notified_at": dateTime, "resolved_by": str, "inhibited_by": str,
		"acknowledgement": obj(map[string]any{"by": str, "note": str, "at": dateTime})}),
	"AlertList":   obj(map[string]any{"alerts": arr(ref("Alert"))}),
	"AlertDetail": obj(map[string]any{"alert": ref("Alert"), "history": arr(obj(map[string]any{"alert_id": str, "at": dateTime, "from": str, "to": str, "actor": str, "note": str}))}),
	"AlertNote":   obj(map[string]any{"note": str}),
	"AlertRules":  obj(map[string]any{"rules": arr(anyObj)}),

	"CheckRequest": obj(map[string]any{"key": str, "method": str, "path": str, "ip": str, "origin": str, "cost": integer}),
	"CheckResponse": obj(map[string]any{"allowed": boolean, "code": str, "key_id": str, "owner_id": str, "tier": str,
		"scopes": strList, "ratelimit": obj(map[string]any{"policy": str, "limit": integer, "remaining": integer, "reset": integer}),
		"retry_after": integer, "message": str}),
	"Record": obj(map[string]any{"time": dateTime, "request_id": str, "method": str, "route": str, "path": str, "status": integer,
		"latency_ms": number, "upstream_latency_ms": number, "request_bytes": integer, "response_bytes": integer,
		"key_id": str, "owner_id": str, "tier": str, "client_ip": str, "country": str, "user_agent": str,
		"error_category": str, "cache_status": str, "decision": str}),
	"EventBatch": map[string]any{"description": "a JSON array of Record, or NDJSON (application/x-ndjson), at most 10,000", "type": "array", "items": ref("Record")},
	"EventsAccepted": obj(map[string]any{"accepted": integer, "rejected": integer, "dropped": integer,
		"errors": arr(obj(map[string]any{"index": integer, "line": integer, "message": str}))}),

	"Stats": obj(statsProps),
	"KeyUsage": obj(map[string]any{"key_id": str, "tier": str,
		"hour":          obj(map[string]any{"limit": integer, "remaining": integer, "reset_seconds": number}),
		"minute":        obj(map[string]any{"limit": integer, "remaining": integer, "reset_seconds": number}),
		"usage":         obj(map[string]any{"this_hour": integer, "today": integer, "this_month": integer}),
		"monthly_quota": integer, "monthly_remaining": map[string]any{"type": []string{"integer", "null"}},
		"active_calendar_rules": strList}),
	"Realtime": obj(map[string]any{"generated_at": dateTime,
		"last_minute": ref("RealtimeWindow"), "last_5_minutes": ref("RealtimeWindow"),
		"series": arr(obj(map[string]any{"t": dateTime, "requests": integer, "errors_5xx": integer, "rate_limited": integer, "p95_ms": number})),
		"point": map[string]any{"description": "in /admin/v1/analytics/stream events only: the last second, instead of series",
			"type": "object", "properties": map[string]any{"t": dateTime, "requests": integer, "errors_5xx": integer, "rate_limited": integer, "p95_ms": number}}}),
	"RealtimeWindow": map[string]any{"allOf": []any{ref("Stats"), obj(map[string]any{"rps": number, "active_keys": integer,
		"top_routes": arr(obj(map[string]any{"route": str, "requests": integer, "errors_5xx": integer, "p95_ms": number}))})}},
	"Summary": obj(map[string]any{"period": str, "tz": str, "from": dateTime, "to": dateTime, "previous_from": dateTime,
		"previous_to": dateTime, "current": ref("Stats"), "previous": ref("Stats"),
		"change": map[string]any{"type": "object", "additionalProperties": map[string]any{"type": []string{"number", "null"}}}}),
	"TimeSeries": obj(map[string]any{"from": dateTime, "to": dateTime, "interval": str, "tz": str, "group_by": str,
		"series": arr(obj(map[string]any{"group": str, "points": arr(map[string]any{"allOf": []any{ref("Stats"), obj(map[string]any{"t": dateTime})}})}))}),
	"Top": obj(map[string]any{"by": str, "metric": str, "from": dateTime, "to": dateTime,
		"items": arr(map[string]any{"allOf": []any{ref("Stats"), obj(map[string]any{"value": str})}})}),
	"Billing": obj(map[string]any{"month": str, "tz": str, "from": dateTime, "to": dateTime, "group_by": str,
		"rows": arr(ref("BillingRow")), "totals": ref("BillingRow")}),
	"BillingRow": obj(map[string]any{"owner_id": str, "key_id": str, "requests": integer, "errors_4xx": integer,
		"errors_5xx": integer, "rate_limited": integer, "bytes_in": integer, "bytes_out": integer}),
	"Requests": obj(map[string]any{"from": nullTime, "to": dateTime, "records": arr(ref("Record")), "next_cursor": str}),
}
