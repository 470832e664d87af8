package cluster_test

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
)

// goldenForm rewrites an answer's indented JSON into the form its golden
// file keeps: the same values, smaller and still one line a point. A list
// of two or more objects of scalars with the same keys (a series' points,
// a table's rows) becomes {"columns": [...], "rows": [[...], ...]}; an
// object or list holding only scalars is written on one line; keys are
// sorted. Numbers keep their text (json.Number), so nothing rounds. It
// took the golden files of TestSourceMatchesBbolt from 5.2 MB to 1.3 MB.
func goldenForm(t *testing.T, indented []byte) []byte {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(indented))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	writeGolden(t, &b, asTables(v), "")
	b.WriteByte('\n')
	return b.Bytes()
}

// asTables turns each list of like objects of scalars in v into a table.
func asTables(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = asTables(x)
		}
		return out
	case []any:
		if cols, ok := likeObjects(v); ok {
			rows := make([]any, len(v))
			for i, x := range v {
				row := make([]any, len(cols))
				for j, c := range cols {
					row[j] = x.(map[string]any)[c]
				}
				rows[i] = row
			}
			colsAny := make([]any, len(cols))
			for i, c := range cols {
				colsAny[i] = c
			}
			return map[string]any{"columns": colsAny, "rows": rows}
		}
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = asTables(x)
		}
		return out
	}
	return v
}

// likeObjects returns the sorted keys of list's objects when it holds two
// or more objects of scalars, all with those keys.
func likeObjects(list []any) ([]string, bool) {
	if len(list) < 2 {
		return nil, false
	}
	var cols []string
	for i, x := range list {
		m, ok := x.(map[string]any)
		if !ok || !scalars(m) {
			return nil, false
		}
		keys := sortedKeys(m)
		if i == 0 {
			cols = keys
		} else if !slices.Equal(keys, cols) {
			return nil, false
		}
	}
	return cols, true
}

// scalars reports whether v (an object or a list) holds no object or list.
func scalars(v any) bool {
	switch v := v.(type) {
	case map[string]any:
		for _, x := range v {
			if !isScalar(x) {
				return false
			}
		}
	case []any:
		for _, x := range v {
			if !isScalar(x) {
				return false
			}
		}
	}
	return true
}

func isScalar(v any) bool {
	switch v.(type) {
	case map[string]any, []any:
		return false
	}
	return true
}

func sortedKeys(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }

// writeGolden writes v at indent: a value of scalars on one line, any
// other object or list one entry a line.
func writeGolden(t *testing.T, b *bytes.Buffer, v any, indent string) {
	if scalars(v) {
		enc, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(enc)
		return
	}
	inner := indent + "  "
	open, end := "[", "]"
	var entries []func()
	switch v := v.(type) {
	case map[string]any:
		open, end = "{", "}"
		for _, k := range sortedKeys(v) {
			key, _ := json.Marshal(k)
			entries = append(entries, func() { b.Write(key); b.WriteString(": "); writeGolden(t, b, v[k], inner) })
		}
	case []any:
		for _, x := range v {
			entries = append(entries, func() { writeGolden(t, b, x, inner) })
		}
	}
	b.WriteString(open + "\n")
	for i, e := range entries {
		b.WriteString(inner)
		e()
		if i < len(entries)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString(indent + end)
}

// The golden form keeps every value: a series' points become a table with
// their numbers as written, and nested lists stay lists.
func TestGoldenFormKeepsValues(t *testing.T) {
	in := []byte(`{"series": [{"group": "a", "points": [{"t": "x", "n": 1, "p": 0.125}, {"t": "y", "n": 12345678901234567890, "p": 1e-7}]}],
		"one": [{"k": 1}], "ids": ["b", "a"], "empty": {}}`)
	want := strings.Join([]string{
		`{`,
		`  "empty": {},`,
		`  "ids": ["b","a"],`,
		`  "one": [`,
		`    {"k":1}`,
		`  ],`,
		`  "series": [`,
		`    {`,
		`      "group": "a",`,
		`      "points": {`,
		`        "columns": ["n","p","t"],`,
		`        "rows": [`,
		`          [1,0.125,"x"],`,
		`          [12345678901234567890,1e-7,"y"]`,
		`        ]`,
		`      }`,
		`    }`,
		`  ]`,
		`}`,
	}, "\n") + "\n"
	if got := string(goldenForm(t, in)); got != want {
		t.Fatalf("golden form:\n%s\nwant:\n%s", got, want)
	}
}
