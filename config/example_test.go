package config_test

import (
	"fmt"

	"github.com/apiwarden/apiwarden/config"
)

func ExampleParse() {
	cfg, err := config.Parse([]byte(`
[tiers.free]
requests_per_hour = 250
`), "apiwarden.toml")
	fmt.Println(err, cfg.Tiers["free"].RequestsPerHour, cfg.Tiers["free"].BurstPerMinute)

	_, err = config.Parse([]byte(`
[server]
listen = "127.0.0.1:8080"
timezone = "Mars/Olympus"

[tiers.free]
burst_per_minute = -1
`), "apiwarden.toml")
	fmt.Println(err)
	// Output:
	// <nil> 250 10
	// config: apiwarden.toml: line 4: server.timezone must be an IANA time zone such as "UTC" or "Europe/Berlin", got "Mars/Olympus"
	// config: apiwarden.toml: line 7: tiers.free.burst_per_minute must be > 0, got -1
}
