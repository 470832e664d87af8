package app_test

import (
	"context"
	"fmt"
	"net/http"
	"os"

	"github.com/apiwarden/apiwarden/app"
	"github.com/apiwarden/apiwarden/config"
)

func Example() {
	dir, _ := os.MkdirTemp("", "apiwarden-example")
	defer os.RemoveAll(dir)

	// config.Load reads a file over these defaults; here they are set in code.
	cfg := config.Default()
	cfg.Server.Listen, cfg.Server.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Server.DataDir = dir
	cfg.Security.AdminToken, cfg.Security.KeySecret = "example-admin-token", ""

	a, err := app.New(cfg, app.Options{}) // the ports are bound when New returns
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- a.Run(ctx) }()

	resp, err := http.Get("http://" + a.AdminAddr() + "/healthz")
	if err == nil {
		fmt.Println(resp.StatusCode)
		resp.Body.Close()
	}
	stop()
	fmt.Println(<-done)
	// Output:
	// 200
	// <nil>
}
