package admin

import (
	"testing"
)

func TestCSVTextDefusesFormulas(t *testing.T) {
	cases := map[string]string{
		"/api/forms/1":             "/api/forms/1",
		"Mozilla/5.0":              "Mozilla/5.0",
		"=HYPERLINK(\"http://x\")": "'=HYPERLINK(\"http://x\")",
		"+1+1":                     "'+1+1",
		"-2":                       "'-2",
		"@SUM(A1)":                 "'@SUM(A1)",
		"\tx":                      "'\tx",
		"":                         "",
	}
	for in, want := range cases {
		if got := csvText(in); got != want {
			t.Errorf("csvText(%q) = %q, want %q", in, got, want)
		}
	}
}
