package gateway

import "testing"

func TestApiwardenHeader(t *testing.T) {
	for name, want := range map[string]bool{
		"X-Apiwarden-Owner": true, "X_apiwarden_owner": true, "X-APIWARDEN_TIER": true, "x_Apiwarden-Key_id": true,
		"X-Apiwarden": false, "X-Api-Key": false, "X-Apiwardens": true, "Xapiwarden-Owner": false,
	} {
		if got := apiwardenHeader(name); got != want {
			t.Errorf("apiwardenHeader(%q) = %v, want %v", name, got, want)
		}
	}
}
