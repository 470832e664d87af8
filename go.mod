module github.com/apiwarden/apiwarden

go 1.26.8

require go.etcd.io/bbolt v1.5.0

require (
	github.com/BurntSushi/toml v1.6.0 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/dgraph-io/ristretto/v2 v2.4.2 // indirect
	github.com/dustin/go-humanize v1.0.1 // indirect
	golang.org/x/sys v0.45.0 // indirect
)
