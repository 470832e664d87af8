package config

import (
	"encoding"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// decodeInto writes the generic TOML tree data over the value rv, which
// already holds the defaults. Unlike toml.Decode into a struct it never
// stops at the first problem: unknown keys and wrong types are all
// collected, each with its key path, so a user fixes a file in one pass.
//
// Tables decode field by field over the defaults; arrays replace the
// default array as a whole; a map entry that exists in the defaults (a
// built-in tier) is decoded over, so a file may change one field of it.
func (pl *problemList) decodeInto(path string, data any, rv reflect.Value) {
	if rv.CanAddr() {
		if tu, ok := rv.Addr().Interface().(encoding.TextUnmarshaler); ok {
			pl.decodeText(path, data, tu)
			return
		}
	}
	switch rv.Kind() {
	case reflect.Struct:
		pl.decodeStruct(path, data, rv)
	case reflect.Map:
		pl.decodeMap(path, data, rv)
	case reflect.Slice:
		pl.decodeSlice(path, data, rv)
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int64, reflect.Int32, reflect.Float64:
		pl.decodeScalar(path, data, rv)
	default:
		pl.add(path, "has a type the loader does not handle (%s)", rv.Type())
	}
}

// decodeText decodes a TOML string into a value that parses its own text
// (a Duration, for one).
func (pl *problemList) decodeText(path string, data any, tu encoding.TextUnmarshaler) {
	s, isString := data.(string)
	if !isString {
		pl.add(path, "must be a string, got %s", tomlTypeName(data))
		return
	}
	if err := tu.UnmarshalText([]byte(s)); err != nil {
		pl.add(path, "%v", err)
	}
}

// decodeStruct decodes a TOML table over a struct, field by field, naming
// every key the struct lacks.
func (pl *problemList) decodeStruct(path string, data any, rv reflect.Value) {
	table, ok := data.(map[string]any)
	if !ok {
		pl.add(path, "must be a table, got %s", tomlTypeName(data))
		return
	}
	fields := tomlFields(rv.Type())
	for _, name := range sortedKeys(table) {
		sub := join(path, name)
		i, known := fields[name]
		if !known {
			pl.add(sub, "is not a known setting%s", suggest(name, fields))
			continue
		}
		pl.decodeInto(sub, table[name], rv.Field(i))
	}
}

// decodeMap decodes a TOML table into a map, each entry over the entry of
// the same name already there.
func (pl *problemList) decodeMap(path string, data any, rv reflect.Value) {
	table, ok := data.(map[string]any)
	if !ok {
		pl.add(path, "must be a table, got %s", tomlTypeName(data))
		return
	}
	if rv.IsNil() {
		rv.Set(reflect.MakeMap(rv.Type()))
	}
	for _, name := range sortedKeys(table) {
		elem := reflect.New(rv.Type().Elem()).Elem()
		if old := rv.MapIndex(reflect.ValueOf(name)); old.IsValid() {
			elem.Set(old)
		}
		pl.decodeInto(join(path, name), table[name], elem)
		rv.SetMapIndex(reflect.ValueOf(name), elem)
	}
}

// decodeSlice decodes a TOML array into a slice, replacing the default.
func (pl *problemList) decodeSlice(path string, data any, rv reflect.Value) {
	items, ok := asSlice(data)
	if !ok {
		pl.add(path, "must be an array, got %s", tomlTypeName(data))
		return
	}
	if len(items) == 0 {
		// An empty array means "none", the same as the zero value, so a
		// file that spells out `tiers = []` equals one that omits it.
		rv.Set(reflect.Zero(rv.Type()))
		return
	}
	out := reflect.MakeSlice(rv.Type(), len(items), len(items))
	for i, item := range items {
		pl.decodeInto(path+"["+strconv.Itoa(i)+"]", item, out.Index(i))
	}
	rv.Set(out)
}

// decodeScalar decodes a TOML string, boolean or number into a value of
// the kind decodeInto routes here.
func (pl *problemList) decodeScalar(path string, data any, rv reflect.Value) {
	switch rv.Kind() {
	case reflect.String:
		s, ok := data.(string)
		if !ok {
			pl.add(path, "must be a string, got %s", tomlTypeName(data))
			return
		}
		rv.SetString(s)
	case reflect.Bool:
		b, ok := data.(bool)
		if !ok {
			pl.add(path, "must be true or false, got %s", tomlTypeName(data))
			return
		}
		rv.SetBool(b)
	case reflect.Int, reflect.Int64, reflect.Int32:
		n, ok := data.(int64)
		if !ok {
			pl.add(path, "must be a whole number, got %s", tomlTypeName(data))
			return
		}
		if rv.OverflowInt(n) {
			pl.add(path, "is too large: %d", n)
			return
		}
		rv.SetInt(n)
	case reflect.Float64:
		switch v := data.(type) {
		case float64:
			if math.IsNaN(v) || math.IsInf(v, 0) {
				pl.add(path, "must be a finite number, got %v", v)
				return
			}
			rv.SetFloat(v)
		case int64:
			rv.SetFloat(float64(v))
		default:
			pl.add(path, "must be a number, got %s", tomlTypeName(data))
		}
	}
}

// tomlFields maps toml tag names to field indexes.
func tomlFields(t reflect.Type) map[string]int {
	fields := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ",")
		if tag != "" && tag != "-" {
			fields[tag] = i
		}
	}
	return fields
}

func asSlice(data any) ([]any, bool) {
	switch v := data.(type) {
	case []any:
		return v, true
	case []map[string]any:
		out := make([]any, len(v))
		for i, m := range v {
			out[i] = m
		}
		return out, true
	}
	return nil, false
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func tomlTypeName(data any) string {
	switch v := data.(type) {
	case string:
		return fmt.Sprintf("the string %q", v)
	case int64:
		return fmt.Sprintf("the integer %d", v)
	case float64:
		return fmt.Sprintf("the number %v", v)
	case bool:
		return fmt.Sprintf("the boolean %v", v)
	case map[string]any:
		return "a table"
	case []any, []map[string]any:
		return "an array"
	case time.Time:
		return "a date-time"
	}
	return fmt.Sprintf("a %T", data)
}

// suggest names the closest known key when a typo is likely.
func suggest(name string, fields map[string]int) string {
	best, bestDist := "", max(3, len(name)/4+1)
	for known := range fields {
		if d := editDistance(name, known); d < bestDist || (d == bestDist && known < best) {
			best, bestDist = known, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
