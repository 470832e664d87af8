// Package app assembles apiwarden from its configuration: it opens the
// data file, builds the core services, binds the listeners and runs
// everything until its context ends, then shuts down in order. main.go
// and the demo use it; tests start it on 127.0.0.1:0.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/apiwarden/apiwarden/api"
	"github.com/apiwarden/apiwarden/config"
	"github.com/apiwarden/apiwarden/keys"
	"github.com/apiwarden/apiwarden/store"
)

// Options are what the process gives the app besides its configuration.
type Options struct {
	Version string
	Logger  *slog.Logger
	Now     func() time.Time
}

// App is a configured, bound, not yet running apiwarden.
type App struct {
	cfg  *config.Config
	log  *slog.Logger
	now  func() time.Time
	st   *store.Store
	keys *keys.Service
	api  *api.Server

	adminLn  net.Listener
	adminSrv *http.Server
}

// New opens the data directory and binds the listeners, so that when it
// returns without error the ports are taken and their addresses known.
// Everything opened is closed again if a later step fails.
func New(cfg *config.Config, opts Options) (a *App, err error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	a = &App{cfg: cfg, log: opts.Logger, now: opts.Now}
	var cleanups []func()
	defer func() {
		if err != nil {
			for i := len(cleanups) - 1; i >= 0; i-- {
				cleanups[i]()
			}
		}
	}()

	a.st, err = store.Open(cfg.Server.DataDir, store.Options{Logger: a.log})
	if err != nil {
		return nil, err
	}
	cleanups = append(cleanups, func() { a.st.Close() })

	secret, err := a.keySecret()
	if err != nil {
		return nil, err
	}
	a.keys, err = keys.New(keys.Options{
		Store:         a.st,
		Secret:        secret,
		Prefix:        cfg.Security.KeyPrefix,
		Policy:        KeyPolicy(cfg),
		CacheSize:     cfg.Keys.CacheSize,
		FlushInterval: cfg.Keys.LastUsedFlushInterval.D(),
		Now:           a.now,
		Logger:        a.log,
	})
	if err != nil {
		return nil, err
	}
	cleanups = append(cleanups, a.keys.Close)

	if cfg.Security.AdminToken == "" {
		a.log.Warn("no admin token configured: the admin API refuses every call; set APIWARDEN_ADMIN_TOKEN (or security.admin_token) to enable it")
	}
	a.api = api.New(api.Options{
		AdminToken: cfg.Security.AdminToken.Value(),
		Keys:       a.keys,
		Version:    opts.Version,
		Now:        a.now,
		Logger:     a.log,
	})

	a.adminLn, err = net.Listen("tcp", cfg.Server.AdminListen)
	if err != nil {
		return nil, fmt.Errorf("admin listener: %w", err)
	}
	cleanups = append(cleanups, func() { a.adminLn.Close() })
	a.adminSrv = a.httpServer(a.api.AdminHandler())
	return a, nil
}

// keySecret is the configured HMAC pepper, or one generated into the
// data directory on first start.
func (a *App) keySecret() ([]byte, error) {
	if s := a.cfg.Security.KeySecret.Value(); s != "" {
		if len(s) < 16 {
			return nil, errors.New("security.key_secret (or APIWARDEN_KEY_SECRET) must be at least 16 characters; use 32 or more random ones")
		}
		return []byte(s), nil
	}
	secret, created, err := keys.LoadOrCreateSecret(a.cfg.Server.DataDir)
	if err != nil {
		return nil, err
	}
	if created {
		a.log.Warn("generated a key secret; back it up with the data file, or set APIWARDEN_KEY_SECRET",
			"file", a.cfg.Server.DataDir+"/"+keys.SecretFileName)
	}
	return secret, nil
}

// KeyPolicy is the part of the configuration key validation needs.
func KeyPolicy(cfg *config.Config) keys.Policy {
	p := keys.Policy{Scopes: cfg.Keys.Scopes, GracePeriod: cfg.Keys.GracePeriod.D()}
	for name := range cfg.Tiers {
		p.Tiers = append(p.Tiers, name)
	}
	slices.Sort(p.Tiers)
	if _, ok := cfg.Tiers["free"]; ok {
		p.DefaultTier = "free"
	}
	return p
}

func (a *App) httpServer(h http.Handler) *http.Server {
	s := a.cfg.Server
	return &http.Server{
		Handler:           h,
		MaxHeaderBytes:    s.MaxHeaderBytes,
		ReadHeaderTimeout: s.ReadHeaderTimeout.D(),
		ReadTimeout:       s.ReadTimeout.D(),
		WriteTimeout:      s.WriteTimeout.D(),
		IdleTimeout:       s.IdleTimeout.D(),
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelDebug),
	}
}

// AdminAddr is the bound address of the admin listener.
func (a *App) AdminAddr() string { return a.adminLn.Addr().String() }

// Run serves until ctx ends, then drains in-flight requests (up to
// server.shutdown_timeout), flushes what is written behind and closes the
// data file. It returns the first error that stopped it early.
func (a *App) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	serve := func(name string, srv *http.Server, ln net.Listener) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.log.Info("listening", "listener", name, "addr", ln.Addr().String())
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("%s listener: %w", name, err)
			}
		}()
	}
	keysDone := make(chan error, 1)
	go func() { keysDone <- a.keys.Run(context.Background()) }()

	serve("admin", a.adminSrv, a.adminLn)
	a.api.SetReady(true)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	a.api.SetReady(false)
	a.log.Info("shutting down", "drain_timeout", a.cfg.Server.ShutdownTimeout.D().String())

	drainCtx, cancel := context.WithTimeout(context.Background(), a.cfg.Server.ShutdownTimeout.D())
	defer cancel()
	if err := a.adminSrv.Shutdown(drainCtx); err != nil {
		a.log.Warn("admin listener did not drain in time", "err", err)
	}
	wg.Wait()

	a.keys.Stop()
	if err := <-keysDone; err != nil {
		a.log.Error("final write of key usage failed", "err", err)
	}
	a.keys.Close()
	if err := a.st.Close(); err != nil && runErr == nil {
		runErr = err
	}
	a.log.Info("stopped")
	return runErr
}
