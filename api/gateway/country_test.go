package gateway

import "testing"

func TestCountryCode(t *testing.T) {
	for in, want := range map[string]string{
		"DE": "DE", "de": "DE", "gB": "GB", "XX": "XX", "T1": "T1",
		"": "", "D": "", "DEU": "", "D-": "", "ÄÖ": "", "Ü": "", "de ": "", "<s": "",
	} {
		if got := countryCode(in); got != want {
			t.Errorf("countryCode(%q) = %q, want %q", in, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { countryCode("DE") }); n != 0 {
		t.Errorf("an upper-case code allocates %v times", n)
	}
}
