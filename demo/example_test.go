package demo_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/apiwarden/apiwarden/demo"
)

func ExampleNewUpstream() {
	up := demo.NewUpstream(demo.UpstreamOptions{
		Seed:  1,
		Sleep: func(context.Context, time.Duration) {}, // no waiting in an example
	})
	rec := httptest.NewRecorder()
	up.ServeHTTP(rec, httptest.NewRequest("GET", "/no/such/endpoint", nil))
	fmt.Println(rec.Code)

	up.SetIncident(true)
	fmt.Println(up.Incident())
	// Output:
	// 404
	// true
}

func ExampleRhythm() {
	loc := time.UTC
	night := demo.Rhythm(time.Date(2026, 11, 23, 3, 0, 0, 0, loc), loc)     // a Monday night
	saturday := demo.Rhythm(time.Date(2026, 11, 28, 19, 0, 0, 0, loc), loc) // a Saturday evening
	fmt.Println(night < saturday)
	// Output: true
}
